-- A GET paced at BENCH_DELAY_MS between requests on each connection, so that latency is measured
-- at a fixed, moderate rate rather than at saturation.
local pause = tonumber(os.getenv("BENCH_DELAY_MS") or "0")
function delay()
  return pause
end
