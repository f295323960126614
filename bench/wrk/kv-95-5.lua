-- KV read-heavy mix: 95% GET, 5% PUT of a 100-byte value, over 1000 keys
-- written before the run. Each thread draws from its own fixed seed so every
-- server sees the same sequence.
local keys = 1000
local value = string.rep("w", 100)
local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("seed", counter)
end

function init(args)
  math.randomseed(seed or 1)
end

function request()
  local key = math.random(0, keys - 1)
  if math.random(1, 100) <= 5 then
    return wrk.format("PUT", "/k/" .. key, nil, value)
  end
  return wrk.format("GET", "/k/" .. key)
end
