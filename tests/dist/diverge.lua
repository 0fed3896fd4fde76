-- A branch on a rank-local value: rank 0 reduces 3 numbers, the others 4.
-- Every rank must stop with an error naming the collective, not hang.
local lg = require "luagan"
local dist = lg.dist
local rank = dist.init()
dist.allreduce(lg.ones(rank == 0 and 3 or 4))
print("unreachable")
