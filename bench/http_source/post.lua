-- wrk script of the HTTP source benchmark: keep-alive POSTs of a 10-line NDJSON body, and a tally
-- of the answers by status, printed by done() as one JSON line for run.py.
--
-- Its argument (after --) is how many seconds to send for. After that no request is sent (delay()
-- holds each connection), so that every request sent is answered and counted before wrk's -d
-- ends: none is left in flight, taken by the server but not seen by wrk. The rate is the answers
-- over the time from the first request to the last answer.
local ffi = require("ffi")
ffi.cdef [[
  struct bench_timespec { long tv_sec; long tv_nsec; };
  int clock_gettime(int clock, struct bench_timespec *ts);
]]
local ts = ffi.new("struct bench_timespec")
local function now()
  ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) / 1e9
end
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-ndjson"

local lines = {}
for i = 1, 10 do
  lines[i] = string.format(
    '{"seq":%d,"device":"xbox_one","sev":"success","title":"narcos","country":"UK","time":1515445354624}',
    i)
end
wrk.body = table.concat(lines, "\n") .. "\n"

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  statuses = {}
  started = now()
  last = started
  stop_at = started + tonumber(args[1] or "5")
end

function delay()
  if now() >= stop_at then
    return 3600000
  end
  return 0
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
  last = now()
end

function done(summary, latency, requests)
  local total = {}
  local first, final = nil, nil
  for _, thread in ipairs(threads) do
    local s, l = thread:get("started"), thread:get("last")
    if first == nil or s < first then first = s end
    if final == nil or l > final then final = l end
    for status, n in pairs(thread:get("statuses")) do
      total[status] = (total[status] or 0) + n
    end
  end
  local parts = {}
  for status, n in pairs(total) do
    table.insert(parts, string.format('"%d":%d', status, n))
  end
  local e = summary.errors
  io.write(string.format(
    'WRK_RESULT {"requests":%d,"seconds":%.3f,"statuses":{%s},"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}}\n',
    summary.requests, final - first, table.concat(parts, ","), e.connect, e.read,
    e.write, e.status, e.timeout))
end
