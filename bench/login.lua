-- POST /auth/login with one fixed body (BENCH_EMAIL, BENCH_PASSWORD). With BENCH_DELAY_MS each
-- connection waits that long before every request, which paces the offered rate: about
-- connections * 1000 / (delay + latency) requests a second.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = string.format('{"email":"%s","password":"%s"}', os.getenv("BENCH_EMAIL"), os.getenv("BENCH_PASSWORD"))
local pause = tonumber(os.getenv("BENCH_DELAY_MS") or "0")
if pause > 0 then
  function delay()
    return pause
  end
end
