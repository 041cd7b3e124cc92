-- wrk script for bench/orders/run: POST /api/orders with a unique Idempotency-Key per request;
-- each thread stops after its share of the attempts. Args: product_id, attempts per thread,
-- run prefix (keeps keys unique across runs).
local threads = {}

function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

function init(args)
  product = args[1]
  quota = tonumber(args[2])
  prefix = args[3]
  sent = 0
  answered = 0
  created = 0
  refused = 0
  other = 0
  body = '{"product_id":"' .. product .. '","quantity":1,"email":"buyer@example.com",' ..
         '"name":"Buyer","shipping_address":"1 Main St"}'
end

function request()
  sent = sent + 1
  return wrk.format("POST", "/api/orders", {
    ["Content-Type"] = "application/json",
    ["Idempotency-Key"] = prefix .. "-" .. tid .. "-" .. sent,
  }, body)
end

function response(status, headers, resp_body)
  answered = answered + 1
  if status == 201 then
    created = created + 1
  elseif status == 409 then
    refused = refused + 1
  else
    other = other + 1
  end
  if answered >= quota then
    wrk.thread:stop()
  end
end

function done(summary, latency, requests)
  local c, r, o = 0, 0, 0
  for _, t in ipairs(threads) do
    c = c + t:get("created")
    r = r + t:get("refused")
    o = o + t:get("other")
  end
  io.write(string.format(
    "RESULT {\"answered\": %d, \"created\": %d, \"refused\": %d, \"other\": %d, " ..
    "\"socket_errors\": %d, \"duration_us\": %d, \"p50_us\": %d, \"p90_us\": %d, " ..
    "\"p99_us\": %d, \"max_us\": %d}\n",
    summary.requests, c, r, o,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.duration, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max))
end
