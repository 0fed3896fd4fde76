-- Rank 0 stops calling collectives (it ends); the others wait in a barrier.
-- With LUAGAN_DIST_TIMEOUT set low, the watchdog must end every rank with a
-- message naming what waited, instead of a hang.
local lg = require "luagan"
local dist = lg.dist
local rank = dist.init()
if rank ~= 0 then dist.barrier() end
print("rank " .. rank .. " past the branch")
