-- POST /api/orders with a fixed valid body: the owner-scoped create path.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("RAMPART_BENCH_ACCESS")
wrk.body = '{"item":"bench widget","quantity":3}'
