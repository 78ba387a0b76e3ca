-- wrk script of `scripts/bench viewtron`: POST a Viewtron LPR body to /API on keep-alive
-- connections, a different body per request, and check every reply.
--
--   wrk -t1 -cN -dD -s scripts/bench_viewtron.lua http://127.0.0.1:PORT -- TEMPLATE ID_BASE TIME_BASE_US
--
-- TEMPLATE is a body with the placeholders {TIME} (replaced by a 16-digit µs time) and {ID}
-- (a 10-digit plate id): request n of thread t gets time TIME_BASE_US + n and id
-- ID_BASE + t * 100,000,000 + n, so no two requests of a run (nor of two runs with
-- different ID_BASEs) share an idempotency key. The template is split once around the
-- placeholders; a request is built by concatenation. A reply counts as ok when it is a 200
-- whose body contains <status>success</status>, as bad otherwise.
--
-- done() prints one line, `BENCH key=value ...`, for the driver (scripts/bench_viewtron.py):
-- latencies in µs, counts of requests, ok and bad replies and socket errors.

local threads = {}

function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

local p0, p1, p2, id_base, time_base
local n = 0
ok = 0
bad = 0

function init(args)
  local f = assert(io.open(args[1], "rb"))
  local t = f:read("*a")
  f:close()
  local a = assert(t:find("{TIME}", 1, true), "no {TIME} in the template")
  local b = assert(t:find("{ID}", 1, true), "no {ID} in the template")
  assert(a < b, "{TIME} must come before {ID}")
  p0, p1, p2 = t:sub(1, a - 1), t:sub(a + 6, b - 1), t:sub(b + 4)
  id_base = tonumber(args[2]) + tid * 100000000
  time_base = tonumber(args[3])
  wrk.method = "POST"
  wrk.path = "/API"
  wrk.headers["Content-Type"] = "application/xml; charset=utf-8"
  wrk.headers["Connection"] = "keep-alive"
end

function request()
  n = n + 1
  local body = p0 .. string.format("%016d", time_base + n) .. p1 .. string.format("%010d", id_base + n) .. p2
  return wrk.format(nil, nil, nil, body)
end

function response(status, headers, body)
  if status == 200 and body and body:find("<status>success</status>", 1, true) then
    ok = ok + 1
  else
    bad = bad + 1
  end
end

function done(summary, latency, requests)
  local oks, bads = 0, 0
  for _, t in ipairs(threads) do
    oks = oks + t:get("ok")
    bads = bads + t:get("bad")
  end
  local e = summary.errors
  io.write(string.format(
    "BENCH requests=%d duration_us=%d bytes=%d ok=%d bad=%d connect=%d read=%d write=%d status=%d timeout=%d "
      .. "p50_us=%d p90_us=%d p99_us=%d max_us=%d mean_us=%.1f\n",
    summary.requests, summary.duration, summary.bytes, oks, bads, e.connect, e.read, e.write, e.status,
    e.timeout, latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean))
end
