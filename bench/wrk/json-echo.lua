-- POST a compact JSON document of about 10 KB. Every value is an integer
-- or a plain ASCII string, so a parse and re-serialize returns the same bytes.
local parts = {}
local size = 0
local i = 0
while size < 10 * 1024 - 80 do
  local item = string.format('{"id":%d,"name":"item-%d","tags":["bench","json"],"price":%d}', i, i, (i * 37) % 1000)
  parts[#parts + 1] = item
  size = size + #item + 1
  i = i + 1
end

wrk.method = "POST"
wrk.path = "/"
wrk.body = '{"items":[' .. table.concat(parts, ",") .. ']}'
wrk.headers["Content-Type"] = "application/json"
