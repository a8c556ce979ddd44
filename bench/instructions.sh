#!/usr/bin/env bash
# Instructions per request (issue 17), counted by valgrind's callgrind: repeatable to a fraction
# of a percent even on a loaded machine, where wrk's req/s are not. For comparing two builds of
# the request path, not for absolute speed.
#
#   bash bench/instructions.sh                  # the release build of this checkout
#   BIN=/tmp/rampart-old bash bench/instructions.sh
#   N=5000 bash bench/instructions.sh
#
# The server runs under callgrind (EdDSA, SQLite, access log at `info`, small Argon2 parameters so
# that the set-up logins are quick under the emulator). After a warm-up the counters are zeroed,
# then N sequential keep-alive requests are sent to each endpoint, and the instructions of the
# whole process (every thread: the log writer's too) are read; then the process is counted as
# long again with no request, and that idle count (its timers' work) is taken off before the
# division by N.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-2000}
for tool in valgrind callgrind_control python3 curl; do
  command -v $tool >/dev/null || { echo "bench: $tool is not installed" >&2; exit 1; }
done
if [ -z "${BIN:-}" ]; then
  cargo build --release --quiet -p rampart
  BIN=${CARGO_TARGET_DIR:-target}/release/rampart
fi
WORK=$(mktemp -d)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
BASE="http://127.0.0.1:$PORT"
cat > "$WORK/rampart.toml" <<TOML
profile = "dev"
[server]
listen = "127.0.0.1:$PORT"
public_url = "http://localhost:$PORT"
[database]
url = "sqlite://$WORK/bench.db"
[auth]
keys_dir = "$WORK/keys"
jwt_algorithm = "EdDSA"
password_hash = { algorithm = "argon2id", memory_kib = 1024, iterations = 1, parallelism = 1 }
[rate_limit]
login_per_ip_per_minute = 1000000000
login_global_per_minute = 1000000000
api_per_user_per_minute = 1000000000
api_per_ip_per_minute = 1000000000
TOML
# The example `orders` resource, as shipped (dropped with the raised limits for the 429 server).
sed -n '/^\[roles\]/,$p' config/rampart.example.toml >> "$WORK/rampart.toml"
# start_server: the server on $WORK/rampart.toml under callgrind (sets SERVER), once it answers.
start_server() {
  valgrind --tool=callgrind --callgrind-out-file="$WORK/callgrind.out.%p" \
    "$BIN" serve --config "$WORK/rampart.toml" > "$WORK/server.log" 2> "$WORK/valgrind.log" &
  SERVER=$!
  for _ in $(seq 600); do curl -sf "$BASE/healthz" >/dev/null && break; sleep 0.2; done
}
cleanup() { kill "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
start_server

EMAIL="bench-$RANDOM@example.com"
PASSWORD="correct horse battery staple"
curl -sf -X POST "$BASE/auth/register" -H 'content-type: application/json' \
  -d "{\"email\":\"$EMAIL\",\"password\":\"$PASSWORD\"}" >/dev/null
ACCESS=$(curl -sf -X POST "$BASE/auth/token" -H 'content-type: application/json' \
  -d "{\"grant_type\":\"password\",\"email\":\"$EMAIL\",\"password\":\"$PASSWORD\"}" |
  python3 -c "import sys,json; print(json.load(sys.stdin)['access_token'])")
ORDER_ID=$(curl -sf -X POST "$BASE/api/orders" -H 'content-type: application/json' -H "Authorization: Bearer $ACCESS" \
  -d '{"item":"bench widget","quantity":2}' | python3 -c "import sys,json; print(json.load(sys.stdin)['id'])")

# requests PATH N [TOKEN]: N sequential GETs on one keep-alive connection, each checked for 200.
# With REFUSED set, N logins posted instead, each checked to be refused (429), each request in
# one write as wrk sends it (http.client writes the body apart from the head, and the server
# would then wait for the body of each refusal on the socket: a different request to count).
requests() {
  python3 - "$PORT" "$1" "$2" "${3:-}" "${REFUSED:-}" <<'PY'
import http.client, json, re, socket, sys
port, path, n, token, refused = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
if refused:
    body = json.dumps({"email": "nobody@example.com", "password": "wrong password here"}).encode()
    request = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
               f"Content-Length: {len(body)}\r\n\r\n").encode() + body
    s = socket.create_connection(("127.0.0.1", port), timeout=60)
    for _ in range(n):
        s.sendall(request)
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = s.recv(65536)
            if not chunk:
                sys.exit(f"{path}: connection closed")
            buf += chunk
        head, rest = buf.split(b"\r\n\r\n", 1)
        length = int(re.search(rb"(?i)\r\ncontent-length: *(\d+)", head).group(1))
        while len(rest) < length:
            rest += s.recv(65536)
        if int(head.split()[1]) != 429:
            sys.exit(f"{path}: {head.split()[1].decode()}")
    sys.exit(0)
headers = {"Authorization": f"Bearer {token}"} if token else {}
c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
for _ in range(n):
    c.request("GET", path, headers=headers)
    r = c.getresponse()
    r.read()
    if r.status != 200:
        sys.exit(f"{path}: {r.status}")
PY
}
# count LABEL: the whole process's instructions since the last zeroing, dumped under LABEL.
count() {
  callgrind_control --dump="$1" "$SERVER" >/dev/null
  # One file for all threads (--separate-threads is off); its "summary:" line is the count of
  # instructions since the zeroing ("totals:", at the end, repeats it).
  awk '/^summary:/ { print $2; exit }' "$(ls -t "$WORK"/callgrind.out.* | head -1)"
}
# instructions PATH [TOKEN]: instructions per request of the whole server process.
instructions() {
  requests "$1" 200 "${2:-}"     # warm-up: caches, lazily registered metric handles, allocator
  sleep 1
  callgrind_control --zero "$SERVER" >/dev/null
  local start busy seconds idle
  start=$(date +%s.%N)
  requests "$1" "$N" "${2:-}"
  sleep 1                         # the log writer finishes its batch
  busy=$(count "$1")
  seconds=$(python3 -c "print($(date +%s.%N) - $start)")
  # The server's own timers (the mail outbox's poll among them) run however long the requests
  # take, and under valgrind that is long and varies: counted alone for as long, idle, and taken
  # off, so that a row counts the requests' work, not the run's length (issue 17).
  callgrind_control --zero "$SERVER" >/dev/null
  sleep "$seconds"
  idle=$(count "$1 idle")
  python3 -c "print(round(($busy - $idle) / $N))"
}
echo "callgrind, $N sequential keep-alive requests each, instructions per request (whole process, net of its idle background):"
echo "  GET /healthz              $(instructions /healthz)"
echo "  GET /auth/me (bearer)     $(instructions /auth/me "$ACCESS")"
echo "  GET /api/orders/{id}      $(instructions "/api/orders/$ORDER_ID" "$ACCESS")"
# A login refused by the per-IP login budget (default limits, so a second server): as run.sh's
# 429 row, the client is over its budget before counting starts.
kill "$SERVER"; wait "$SERVER" 2>/dev/null || true
sed -i '/^\[rate_limit\]/,$d' "$WORK/rampart.toml"
start_server
for _ in $(seq 20); do
  status=$(curl -s -o /dev/null -w '%{http_code}' -X POST "$BASE/auth/login" -H 'content-type: application/json' \
    -d '{"email":"nobody@example.com","password":"wrong password here"}')
  [ "$status" = 429 ] && break
done
echo "  POST /auth/login (429)    $(REFUSED=1 instructions /auth/login)"
