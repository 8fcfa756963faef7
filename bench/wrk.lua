-- wrk script for bench/run.ts: the n-th request of an endpoint from its template (bench/load.ts,
-- expandTemplate, is the same rule in JavaScript). Arguments, after `--`:
--   threads method pathTemplate bodyTemplate listFile authorization idempotencyKey token=mul:mod:add ...
-- (authorization: the Authorization header of every request, `-` for none; idempotencyKey: a template
-- for each request's Idempotency-Key header, `-` for none)
-- `{name}` in a template becomes add + (n * mul) % mod (mod 0: no modulo), `{listed}` the
-- (n % lines)-th line of listFile. n counts all requests of the run: thread i of t sends n = i, i + t, …
-- so a value such as a user to delete is used exactly once. The result is one JSON line on stdout.

local threads = {}
function setup(thread)
  thread:set("index", #threads)
  table.insert(threads, thread)
end

local method, pathTemplate, bodyTemplate, listed, headers, keyTemplate, tokens, stride, counter
function init(args)
  stride = tonumber(args[1])
  method, pathTemplate, bodyTemplate = args[2], args[3], args[4]
  listed = {}
  if args[5] ~= "-" then
    for line in io.lines(args[5]) do table.insert(listed, line) end
  end
  headers = {}
  if args[6] ~= "-" then headers["Authorization"] = args[6] end
  if args[7] ~= "-" then keyTemplate = args[7] end
  tokens = {}
  for i = 8, #args do
    local name, mul, mod, add = args[i]:match("^(%w+)=(%d+):(%d+):(%d+)$")
    tokens[name] = { tonumber(mul), tonumber(mod), tonumber(add) }
  end
  counter = 0
end

local function expand(template, n)
  return (template:gsub("{(%w+)}", function(name)
    if name == "listed" then return listed[(n % #listed) + 1] end
    local t = tokens[name]
    local value = n * t[1]
    if t[2] > 0 then value = value % t[2] end
    return string.format("%d", t[3] + value)
  end))
end

function request()
  local n = counter * stride + index
  counter = counter + 1
  if keyTemplate then headers["Idempotency-Key"] = expand(keyTemplate, n) end
  if bodyTemplate == "-" then return wrk.format(method, expand(pathTemplate, n), headers) end
  local withBody = { ["Content-Type"] = "application/json" }
  for name, value in pairs(headers) do withBody[name] = value end
  return wrk.format(method, expand(pathTemplate, n), withBody, expand(bodyTemplate, n))
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests":%d,"durationUs":%d,"non2xx":%d,"errors":%d,"p50Us":%d,"p99Us":%d}\n',
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
