#!/usr/bin/env bash
# Throughput benchmark (issue 17): every figure is a ratio to a bare axum hello-world server
# (bench/baseline, built with the same release profile) measured in the same run, right before
# and right after it, so the ratios hold on any machine and a drift in the machine's load shows
# as a gap between the two brackets. Needs wrk (Debian: apt-get install wrk), curl, python3.
#
#   bash bench/run.sh                # 10 s per measurement, wrk -t1 -c32
#   DURATION=30s bash bench/run.sh
#   BENCH_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test BENCH_REDIS_URL=redis://127.0.0.1:6379 \
#     bash bench/run.sh              # the scale-out backends: a fresh database, dropped after
#
# The server runs its default configuration (access log at `info`), on SQLite unless told
# otherwise, with EdDSA tokens (ALG=RS256 for RSA) and the rate limits raised out of the way,
# except for the row that measures a refused login (a second server, default limits). That row
# has a floor beside it: bare axum giving the very same 429 (bench/baseline's bench-refusal,
# checked to answer the same status, headers and body), so the table shows how much of the
# row's distance to the hello is the answer itself. The paced login flood and the login rate
# are in bench/abuse.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10s}
THREADS=${THREADS:-1}
CONNECTIONS=${CONNECTIONS:-32}
ALG=${ALG:-EdDSA}
# Seconds the server sits idle after its warm-up before its resident memory is read.
IDLE_SECS=${IDLE_SECS:-65}
for tool in wrk curl python3; do
  command -v $tool >/dev/null || { echo "bench: $tool is not installed (apt-get install $tool)" >&2; exit 1; }
done

# One command for both, so that they share one feature resolution and neither rebuilds the other.
cargo build --release --quiet -p rampart -p rampart-bench-baseline
TARGET=${CARGO_TARGET_DIR:-target}/release
BIN=$TARGET/rampart
WORK=$(mktemp -d)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
DATABASE_URL="sqlite://$WORK/bench.db"
BENCH_DB=""
if [ -n "${BENCH_POSTGRES_URL:-}" ]; then
  BENCH_DB="rampart_bench_$$"
  psql -q "$BENCH_POSTGRES_URL" -c "CREATE DATABASE $BENCH_DB" >/dev/null
  DATABASE_URL="${BENCH_POSTGRES_URL%/*}/$BENCH_DB"
fi
SERVER="" BASELINE="" REFUSAL=""
cleanup() {
  for pid in $SERVER $BASELINE $REFUSAL; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
  [ -n "$BENCH_DB" ] && psql -q "$BENCH_POSTGRES_URL" -c "DROP DATABASE IF EXISTS $BENCH_DB WITH (FORCE)" >/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT

# write_config FILE PORT RAISED(yes|no) REDIS_PREFIX
write_config() {
  local redis="" limits=""
  if [ -n "${BENCH_REDIS_URL:-}" ]; then
    redis="[redis]
url = \"$BENCH_REDIS_URL\"
key_prefix = \"$4\""
  fi
  if [ "$3" = yes ]; then
    # Throughput, not abuse resistance, is measured here: limits out of the way.
    limits="[rate_limit]
login_per_ip_per_minute = 1000000000
login_global_per_minute = 1000000000
api_per_user_per_minute = 1000000000
api_per_ip_per_minute = 1000000000
api_per_key_per_minute = 1000000000"
  fi
  cat > "$1" <<TOML
profile = "dev"
$redis
[server]
listen = "127.0.0.1:$2"
public_url = "http://localhost:$2"
[database]
url = "$DATABASE_URL"
[auth]
keys_dir = "$WORK/keys"
jwt_algorithm = "$ALG"
$limits
TOML
  # The example `orders` resource, as shipped.
  sed -n '/^\[roles\]/,$p' config/rampart.example.toml >> "$1"
}
# start_server CONFIG: sets SERVER and BASE.
start_server() {
  BASE="http://127.0.0.1:$(sed -n 's/^listen = "127.0.0.1:\([0-9]*\)"/\1/p' "$1")"
  "$BIN" serve --config "$1" >> "$WORK/server.log" 2>&1 &
  SERVER=$!
  for _ in $(seq 100); do curl -sf "$BASE/healthz" >/dev/null && return; sleep 0.1; done
  echo "bench: the server did not start; its log:" >&2; tail -20 "$WORK/server.log" >&2; exit 1
}
stop_server() { kill "$SERVER"; wait "$SERVER" 2>/dev/null || true; SERVER=""; }
rss_mb() { awk '/^VmRSS/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }

BASELINE_PORT=$(free_port)
"$TARGET/bench-baseline" "127.0.0.1:$BASELINE_PORT" &
BASELINE=$!
BASELINE_URL="http://127.0.0.1:$BASELINE_PORT/"
for _ in $(seq 100); do curl -sf "$BASELINE_URL" >/dev/null && break; sleep 0.1; done
# Bare axum giving the refused login's answer: the floor of that row (see its source).
REFUSAL_PORT=$(free_port)
"$TARGET/bench-refusal" "127.0.0.1:$REFUSAL_PORT" &
REFUSAL=$!
REFUSAL_URL="http://127.0.0.1:$REFUSAL_PORT/auth/login"
for _ in $(seq 100); do curl -s -o /dev/null -X POST "$REFUSAL_URL" -d '{}' && break; sleep 0.1; done

PORT=$(free_port)
write_config "$WORK/rampart.toml" "$PORT" yes "bench$$"
start_server "$WORK/rampart.toml"

EMAIL="bench-$RANDOM@example.com"
PASSWORD="correct horse battery staple"
NOBODY="nobody-$RANDOM@example.com"
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

# Idle memory: the warm-up above has hashed passwords (each hash worker has its Argon2 memory),
# run queries and answered a few hundred requests; then nothing happens for IDLE_SECS.
RSS_WARM=$(rss_mb "$SERVER")
sleep "$IDLE_SECS"
RSS_IDLE=$(rss_mb "$SERVER")
RSS_BASELINE=$(rss_mb "$BASELINE")

rps() { awk '/Requests\/sec/ {print $2}'; }
run() { wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "$@"; }
ROWS=()
# measure NAME TARGET OUTFILE WRK-ARGS...: the baseline, the row, the baseline again.
measure() {
  local name=$1 target=$2 out=$3
  shift 3
  local before after figure
  before=$(run "$BASELINE_URL" | rps)
  figure=$(run "$@" | tee "$WORK/$out.txt" | rps)
  after=$(run "$BASELINE_URL" | rps)
  ROWS+=("$name|$figure|$before|$after|$target|$out")
}
# Every answer of every row was 2xx (the refused-login row is checked on its own).
check_rows() {
  local row out
  for row in "${ROWS[@]}"; do
    out=${row##*|}
    if [ "$out" = refused ] || [ "$out" = refusal_floor ]; then continue; fi
    if grep -q "Non-2xx" "$WORK/$out.txt"; then echo "bench: $out answered non-2xx" >&2; exit 1; fi
  done
}

echo "machine: $(nproc) cores, $(uname -sr); load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "wrk -t$THREADS -c$CONNECTIONS -d$DURATION; jwt_algorithm $ALG; database ${DATABASE_URL%%:*}; redis $([ -n "${BENCH_REDIS_URL:-}" ] && echo yes || echo no)"
measure "GET /healthz" ">= 0.6" healthz "$BASE/healthz"
measure "GET /auth/me, bearer" ">= 0.5" me -H "Authorization: Bearer $ACCESS" "$BASE/auth/me"
measure "GET /api/orders/{id}, owner-scoped" ">= 0.4" read -H "Authorization: Bearer $ACCESS" "$BASE/api/orders/$ORDER_ID"
measure "GET /api/orders/{id}, API key" "" keyread -H "Authorization: Bearer $API_KEY" "$BASE/api/orders/$ORDER_ID"
export RAMPART_BENCH_ACCESS=$ACCESS RAMPART_BENCH_TOKENS="$WORK/refresh_tokens" RAMPART_BENCH_THREADS=$THREADS
measure "POST /api/orders" ">= 0.2" create -s bench/create.lua "$BASE/api/orders"
measure "GET /api/orders?limit=50" ">= 0.1" list -H "Authorization: Bearer $ACCESS" "$BASE/api/orders?limit=50"
measure "refresh rotation ($ALG)" ">= 0.05" refresh -s bench/refresh.lua "$BASE/auth/token"
check_rows
stop_server
# The server reads every RAMPART_* variable as configuration: the scripts' ones must not reach it.
unset RAMPART_BENCH_ACCESS RAMPART_BENCH_TOKENS RAMPART_BENCH_THREADS

# A refused login: a second server with the default login limits, its client over its budget.
PORT=$(free_port)
write_config "$WORK/refused.toml" "$PORT" no "bench$$r"
start_server "$WORK/refused.toml"
REFUSED_LOGIN="{\"email\":\"$NOBODY\",\"password\":\"wrong password here\"}"
login_status() {
  curl -s -o /dev/null -w '%{http_code}' -X POST "$BASE/auth/login" -H 'content-type: application/json' -d "$REFUSED_LOGIN"
}
for _ in $(seq 20); do [ "$(login_status)" = 429 ] && break; done
[ "$(login_status)" = 429 ] || { echo "bench: the login budget was not exhausted" >&2; exit 1; }
# The floor answers exactly what the server answers (status, headers in order, body), or it is
# not the floor of this row. Masked: the date, the request id, and the seconds to wait.
answer() {
  curl -si -X POST "$1" -H 'content-type: application/json' -d "$REFUSED_LOGIN" |
    tr -d '\r' | sed -E -e '/^date:/Id' -e 's/^(x-request-id|retry-after|ratelimit):.*/\1: */I' -e 's/retry in [0-9]+ s/retry in N s/'
}
if [ "$(answer "$BASE/auth/login")" != "$(answer "$REFUSAL_URL")" ]; then
  echo "bench: bench-refusal's answer is not the server's 429:" >&2
  diff <(answer "$BASE/auth/login") <(answer "$REFUSAL_URL") >&2 || true
  exit 1
fi
export BENCH_EMAIL=$NOBODY BENCH_PASSWORD="wrong password here"
measure "POST /auth/login answered 429" ">= 0.8" refused -s bench/login.lua "$BASE/auth/login"
measure "the same 429 from bare axum (floor)" "" refusal_floor -s bench/login.lua "$REFUSAL_URL"
# Every answer was a refusal: wrk counts them all as non-2xx.
python3 - "$WORK/refused.txt" <<'PY'
import re, sys
t = open(sys.argv[1]).read()
total = int(re.search(r"(\d+) requests in", t).group(1))
refused = re.search(r"Non-2xx or 3xx responses: (\d+)", t)
if not refused or int(refused.group(1)) != total:
    sys.exit("bench: some logins were not refused")
PY
stop_server

echo
printf '%-38s %10s %21s %7s %8s\n' "request" "req/s" "baseline before/after" "ratio" "target"
for row in "${ROWS[@]}"; do
  IFS='|' read -r name figure before after target _ <<<"$row"
  ratio=$(python3 -c "print(f'{$figure / (($before + $after) / 2):.3f}')")
  printf '%-38s %10s %10s/%-10s %7s %8s\n' "$name" "$figure" "$before" "$after" "$ratio" "$target"
done
rps_of() { rps < "$WORK/$1.txt"; }
echo "refused login / the same 429 from bare axum: $(python3 -c "print(f'{$(rps_of refused) / $(rps_of refusal_floor):.2f}')") (what the server's own work leaves of the answer's floor)"
echo "API key cost / JWT cost, same read: $(python3 -c "print(f'{$(rps_of read) / $(rps_of keyread):.2f}')") (issue 15: <= 1.5)"
echo "idle RSS: $RSS_IDLE MB after ${IDLE_SECS}s idle (target <= 30 MB); $RSS_WARM MB right after the warm-up; bare axum: $RSS_BASELINE MB"
