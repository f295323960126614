-- D1 point select by primary key over the 10,000 rows written before the run.
local rows = 10000
local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("seed", counter)
end

function init(args)
  math.randomseed(seed or 1)
end

function request()
  return wrk.format("GET", "/select?id=" .. math.random(1, rows))
end
