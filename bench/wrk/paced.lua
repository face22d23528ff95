-- bench/wrk/ingest.lua paced at a fixed rate: the same requests, with wrk's delay() hook.
--
--   wrk -s bench/wrk/paced.lua URL -- MODE EVENTS HOST COOKIES RATE

local here = debug.getinfo(1, "S").source:sub(2):match("^(.*/)") or "./"
dofile(here .. "ingest.lua")

delay = paced_delay
