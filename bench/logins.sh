#!/usr/bin/env bash
# Logins at the hash limit (issue 17), and the hashing pool's idle memory. Needs wrk, curl and
# python3 (and psql with BENCH_POSTGRES_URL). Release build, default Argon2 parameters (19 MiB,
# t=2, p=1), hash workers = cores, limits raised, access log at `info`.
#
#   bash bench/logins.sh                                   # SQLite
#   BENCH_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test bash bench/logins.sh
#   IDLE=0 bash bench/logins.sh                            # skip the idle-memory minute
#   NO_BUILD=1 bash bench/logins.sh                        # the release binaries as they are
#
# In one run, one after the other:
# 1. one Argon2id verify, as the pool runs it (examples/argon2_verify.rs, at the pool's priority):
#    median of 40 on one thread, and what `cores` threads reach hashing at once; the capacity is
#    cores / median;
# 2. successful logins/s, wrk -t1 -c(4 x cores), bench/login.lua, every answer checked in the
#    access log; the ratio to the capacity measured in step 1 (target >= 0.95);
# 3. the server's VmRSS right after the logins, and after IDLE seconds without one (the pool
#    frees its Argon2 buffers after a minute; target <= 30 MB).
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10s}
IDLE=${IDLE:-70}
for tool in wrk curl python3; do
  command -v $tool >/dev/null || { echo "bench: $tool is not installed" >&2; exit 1; }
done

if [ -z "${NO_BUILD:-}" ]; then   # NO_BUILD=1: use the release binaries as they are
  cargo build --release --quiet -p rampart
  cargo build --release --quiet -p rampart-core --example argon2_verify
fi
TARGET=${CARGO_TARGET_DIR:-target}
BIN=$TARGET/release/rampart
WORK=$(mktemp -d)
SERVER= BENCH_DB=
cleanup() {
  [ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null
  [ -n "$BENCH_DB" ] && psql -q "$BENCH_POSTGRES_URL" -c "DROP DATABASE IF EXISTS $BENCH_DB WITH (FORCE)" >/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT
CORES=$(nproc)
EMAIL="bench-$RANDOM@example.com"
PASSWORD="correct horse battery staple"
DATABASE_URL="sqlite://$WORK/db/bench.db"
BACKEND=SQLite
if [ -n "${BENCH_POSTGRES_URL:-}" ]; then
  BENCH_DB="rampart_logins_$RANDOM"
  psql -q "$BENCH_POSTGRES_URL" -c "CREATE DATABASE $BENCH_DB" >/dev/null
  DATABASE_URL="${BENCH_POSTGRES_URL%/*}/$BENCH_DB"
  BACKEND=PostgreSQL
fi

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
BASE="http://127.0.0.1:$PORT"
mkdir -p "$WORK/db"
cat > "$WORK/rampart.toml" <<TOML
profile = "dev"
[server]
listen = "127.0.0.1:$PORT"
public_url = "http://localhost:$PORT"
[database]
url = "$DATABASE_URL"
[auth]
keys_dir = "$WORK/keys"
TOML

echo "machine: $CORES cores ($(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)), $(uname -sr); $BACKEND; load average before: $(cut -d' ' -f1-3 /proc/loadavg)"

# 1. One verify, measured right before the logins, at the priority the pool's threads run at
# (SCHED_BATCH, nice 10), so that other load on the machine slows both alike.
VERIFY=(chrt --batch 0 nice -n 10 "$TARGET/release/examples/argon2_verify")
ONE=$("${VERIFY[@]}" 40 1)
ALL=$("${VERIFY[@]}" 20 "$CORES")
echo "1. $ONE"
echo "   $ALL"
VERIFY_MS=$(sed -E 's/.*median ([0-9.]+) ms.*/\1/' <<<"$ONE")
TOGETHER=$(sed -E 's/.* ([0-9.]+) hashes\/s together.*/\1/' <<<"$ALL")
CAPACITY=$(python3 -c "print(f'{$CORES * 1000 / $VERIFY_MS:.1f}')")

# 2. Successful logins.
RAMPART_RATE_LIMIT__LOGIN_PER_IP_PER_MINUTE=100000000 RAMPART_RATE_LIMIT__LOGIN_GLOBAL_PER_MINUTE=100000000 \
  RAMPART_RATE_LIMIT__LOCKOUT_AFTER_FAILURES=100000000 \
  "$BIN" serve --config "$WORK/rampart.toml" > "$WORK/server.log" 2>&1 &
SERVER=$!
for _ in $(seq 100); do curl -sf "$BASE/healthz" >/dev/null && break; sleep 0.1; done
curl -sf -X POST "$BASE/auth/register" -H 'content-type: application/json' \
  -d "{\"email\":\"$EMAIL\",\"password\":\"$PASSWORD\"}" >/dev/null
rss() { awk '/^VmRSS/ {printf "%.1f MB", $2 / 1024}' "/proc/$SERVER/status"; }
echo "   server RSS after start: $(rss)"
LCONN=$((CORES * 4))
LOGINS=$(BENCH_EMAIL="$EMAIL" BENCH_PASSWORD="$PASSWORD" \
  wrk -t1 -c"$LCONN" -d"$DURATION" -s bench/login.lua "$BASE/auth/login" | awk '/Requests\/sec/ {print $2}')
STATUSES=$(python3 - "$WORK/server.log" <<'PY'
import json, sys, collections
c = collections.Counter()
for line in open(sys.argv[1]):
    try: v = json.loads(line)
    except ValueError: continue
    f = v.get("fields", v)
    if f.get("path") == "/auth/login": c[str(f.get("status"))] += 1
print(dict(sorted(c.items())))
PY
)
echo "2. wrk -t1 -c$LCONN -d$DURATION: $LOGINS successful logins/s (statuses $STATUSES)"
echo "   ratio to cores / one verify ($CAPACITY/s): $(python3 -c "print(f'{$LOGINS / $CAPACITY:.2f}')") (target >= 0.95);" \
  "to what $CORES threads hashing alone reached ($TOGETHER/s): $(python3 -c "print(f'{$LOGINS / $TOGETHER:.2f}')")"

# 3. Memory.
echo "3. server RSS right after the logins: $(rss)"
if [ "$IDLE" -gt 0 ]; then
  sleep "$IDLE"
  echo "   after ${IDLE} s without a login: $(rss) (target <= 30 MB)"
fi
