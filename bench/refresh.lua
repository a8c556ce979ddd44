-- Refresh-token rotation under load. Each thread holds a queue of live refresh tokens (more than
-- its connections); a request takes one, its response gives back the rotated successor. So every
-- request presents a token that has never been used: the measured path is a genuine rotation.
local threads = 0

-- setup runs in the main state once per thread: deal the tokens out round-robin.
function setup(thread)
  threads = threads + 1
  local total = tonumber(os.getenv("RAMPART_BENCH_THREADS"))
  local mine, n = {}, 0
  for line in io.lines(os.getenv("RAMPART_BENCH_TOKENS")) do
    if n % total + 1 == threads then
      table.insert(mine, line)
    end
    n = n + 1
  end
  thread:set("tokens", table.concat(mine, ","))
end

function init(args)
  ok = 0
  queue = {}
  for token in string.gmatch(tokens or "", "[^,]+") do
    table.insert(queue, token)
  end
end

function request()
  local token = table.remove(queue, 1)
  -- wrk may build a request it never sends (at start-up), so run.sh deals out spare tokens.
  assert(token, "out of refresh tokens: raise the spare count in bench/run.sh")
  local body = '{"grant_type":"refresh_token","refresh_token":"' .. token .. '"}'
  return wrk.format("POST", "/auth/token", { ["Content-Type"] = "application/json" }, body)
end

function response(status, headers, body)
  local token = body:match('"refresh_token":"([^"]+)"')
  if status ~= 200 or token == nil then
    io.stderr:write("refresh failed after " .. ok .. " rotations: " .. status .. " " .. body .. "\n")
    wrk.thread:stop()
    return
  end
  ok = ok + 1
  table.insert(queue, token)
end
