#!/usr/bin/env bash
# Throughput benchmark: every figure is measured against GET /healthz of the same server in the
# same run, so the ratios hold on any machine. Needs wrk (Debian: apt-get install wrk).
#
#   bash bench/run.sh                # 10 s per endpoint
#   DURATION=30s bash bench/run.sh
#   BENCH_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test BENCH_REDIS_URL=redis://127.0.0.1:6379 \
#     bash bench/run.sh              # the scale-out backends: a fresh database, dropped after
#
# Prints requests/s per endpoint and its ratio to /healthz.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10s}
THREADS=${THREADS:-2}
CONNECTIONS=${CONNECTIONS:-32}
command -v wrk >/dev/null || { echo "bench: wrk is not installed (apt-get install wrk)" >&2; exit 1; }

cargo build --release --quiet
BIN=${CARGO_TARGET_DIR:-target}/release/rampart
WORK=$(mktemp -d)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
BASE="http://127.0.0.1:$PORT"
DATABASE_URL="sqlite://$WORK/bench.db"
BENCH_DB=""
if [ -n "${BENCH_POSTGRES_URL:-}" ]; then
  BENCH_DB="rampart_bench_$$"
  psql -q "$BENCH_POSTGRES_URL" -c "CREATE DATABASE $BENCH_DB" >/dev/null
  DATABASE_URL="${BENCH_POSTGRES_URL%/*}/$BENCH_DB"
fi
REDIS_TOML=""
if [ -n "${BENCH_REDIS_URL:-}" ]; then
  REDIS_TOML="[redis]
url = \"$BENCH_REDIS_URL\"
key_prefix = \"bench$$\""
fi
cat > "$WORK/rampart.toml" <<TOML
profile = "dev"
$REDIS_TOML
[server]
listen = "127.0.0.1:$PORT"
public_url = "http://localhost:$PORT"
[database]
url = "$DATABASE_URL"
[auth]
keys_dir = "$WORK/keys"
jwt_algorithm = "${ALG:-RS256}"
# Throughput, not abuse resistance, is measured here: limits out of the way.
[rate_limit]
login_per_ip_per_minute = 1000000000
login_global_per_minute = 1000000000
api_per_user_per_minute = 1000000000
api_per_ip_per_minute = 1000000000
api_per_key_per_minute = 1000000000
TOML
# The example `orders` resource, as shipped.
sed -n '/^\[roles\]/,$p' config/rampart.example.toml >> "$WORK/rampart.toml"
"$BIN" serve --config "$WORK/rampart.toml" > "$WORK/server.log" 2>&1 &
SERVER=$!
cleanup() {
  kill $SERVER 2>/dev/null || true
  wait $SERVER 2>/dev/null || true
  [ -n "$BENCH_DB" ] && psql -q "$BENCH_POSTGRES_URL" -c "DROP DATABASE IF EXISTS $BENCH_DB WITH (FORCE)" >/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT
for _ in $(seq 100); do curl -sf "$BASE/healthz" >/dev/null && break; sleep 0.1; done

EMAIL="bench-$RANDOM@example.com"
PASSWORD="correct horse battery staple"
curl -sf -X POST "$BASE/auth/register" -H 'content-type: application/json' \
  -d "{\"email\":\"$EMAIL\",\"password\":\"$PASSWORD\"}" >/dev/null
grant() {
  curl -sf -X POST "$BASE/auth/token" -H 'content-type: application/json' \
    -d "{\"grant_type\":\"password\",\"email\":\"$EMAIL\",\"password\":\"$PASSWORD\"}"
}
field() { python3 -c "import sys,json; print(json.load(sys.stdin)['$1'])"; }
ACCESS=$(grant | field access_token)
for _ in $(seq $((CONNECTIONS * 2))); do grant | field refresh_token; done > "$WORK/refresh_tokens"
order() {
  curl -sf -X POST "$BASE/api/orders" -H 'content-type: application/json' -H "Authorization: Bearer $ACCESS" \
    -d '{"item":"bench widget","quantity":2}'
}
ORDER_ID=$(order | field id)
# An API key of the same user, for the same read through a key (issue 15: at most 1.5x the JWT's cost).
API_KEY=$(curl -sf -X POST "$BASE/auth/api-keys" -H 'content-type: application/json' -H "Authorization: Bearer $ACCESS" \
  -d '{"name":"bench"}' | field key)
for _ in $(seq 60); do order >/dev/null; done

rps() { awk '/Requests\/sec/ {print $2}'; }
run() { wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "$@"; }

echo "machine: $(nproc) cores, $(uname -sr); wrk -t$THREADS -c$CONNECTIONS -d$DURATION; jwt_algorithm ${ALG:-RS256}; database ${DATABASE_URL%%:*}; redis $([ -n "${BENCH_REDIS_URL:-}" ] && echo yes || echo no)"
HEALTH=$(run "$BASE/healthz" | rps)
ME=$(run -H "Authorization: Bearer $ACCESS" "$BASE/auth/me" | tee "$WORK/me.txt" | rps)
grep -q "Non-2xx" "$WORK/me.txt" && { echo "bench: /auth/me answered non-2xx" >&2; exit 1; }
REFRESH=$(RAMPART_BENCH_TOKENS="$WORK/refresh_tokens" RAMPART_BENCH_THREADS=$THREADS \
  run -s bench/refresh.lua "$BASE/auth/token" | tee "$WORK/refresh.txt" | rps)
grep -q "Non-2xx" "$WORK/refresh.txt" && { echo "bench: refresh answered non-2xx" >&2; exit 1; }

READ=$(run -H "Authorization: Bearer $ACCESS" "$BASE/api/orders/$ORDER_ID" | tee "$WORK/read.txt" | rps)
KEYREAD=$(run -H "Authorization: Bearer $API_KEY" "$BASE/api/orders/$ORDER_ID" | tee "$WORK/keyread.txt" | rps)
LIST=$(run -H "Authorization: Bearer $ACCESS" "$BASE/api/orders?limit=50" | tee "$WORK/list.txt" | rps)
CREATE=$(RAMPART_BENCH_ACCESS=$ACCESS run -s bench/create.lua "$BASE/api/orders" | tee "$WORK/create.txt" | rps)
for f in read keyread list create; do
  grep -q "Non-2xx" "$WORK/$f.txt" && { echo "bench: $f answered non-2xx" >&2; exit 1; }
done

ratio() { python3 -c "print(f'{$1/$2:.2f}')"; }
printf '%-36s %12s %8s\n' "endpoint" "req/s" "ratio"
printf '%-36s %12s %8s\n' "GET /healthz" "$HEALTH" "1.00"
printf '%-36s %12s %8s\n' "GET /auth/me (bearer)" "$ME" "$(ratio "$ME" "$HEALTH")"
printf '%-36s %12s %8s\n' "POST /auth/token (refresh rotation)" "$REFRESH" "$(ratio "$REFRESH" "$HEALTH")"
printf '%-36s %12s %8s\n' "GET /api/orders/{id} (owner)" "$READ" "$(ratio "$READ" "$HEALTH")"
printf '%-36s %12s %8s\n' "GET /api/orders/{id} (API key)" "$KEYREAD" "$(ratio "$KEYREAD" "$HEALTH")"
printf '%-36s %12s %8s\n' "  API key cost / JWT cost (read)" "" "$(ratio "$READ" "$KEYREAD")"
printf '%-36s %12s %8s\n' "GET /api/orders?limit=50" "$LIST" "$(ratio "$LIST" "$HEALTH")"
printf '%-36s %12s %8s\n' "POST /api/orders (create)" "$CREATE" "$(ratio "$CREATE" "$HEALTH")"
