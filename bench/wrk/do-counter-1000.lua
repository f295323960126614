-- 1000 Durable Objects: each request increments the counter of one drawn
-- at random. Each thread draws from its own fixed seed so every server sees
-- the same sequence.
local objects = 1000
local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("seed", counter)
end

function init(args)
  math.randomseed(seed or 1)
end

function request()
  return wrk.format("GET", "/c/" .. math.random(0, objects - 1))
end
