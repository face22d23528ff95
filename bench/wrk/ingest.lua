-- wrk script of the ingest bench (bench/bench_ingest.py): realistic play_video events,
-- each with a fresh random UUID, so every event is new to the server.
--
--   wrk -s bench/wrk/ingest.lua URL -- MODE EVENTS HOST COOKIES [RATE]
--
-- MODE     "batch": the browser Logger's batch, {"sent_at", "events": [...]} sent as
--          text/plain to /activity/events (or /bare); EVENTS events per request.
--          "single": what edX's Logger.log sends to /event: a form-encoded
--          event_type=play_video&event=<JSON string>&page=<url> (EVENTS is ignored).
-- HOST     the Host header (and the same-origin Origin), e.g. 127.0.0.1:8123.
-- COOKIES  session cookies (name=value), separated by spaces: one per learner; each
--          request takes the next one.
-- RATE     with bench/wrk/paced.lua only: requests/s to pace the load at (per wrk
--          thread) instead of as fast as the server answers. Requests go out on a fixed
--          schedule, one every 1/RATE s (late, never doubled up, when every connection
--          is busy).
--
-- done() prints one line "BENCH_RESULT {json}" with the counts that wrk itself does not
-- give: requests written, answers by status, and answers whose JSON said something else
-- than "all accepted, no duplicate, none failed".

local ffi = require("ffi")
ffi.cdef([[
typedef struct { long tv_sec; long tv_nsec; } bench_ingest_timespec;
int clock_gettime(int clock, bench_ingest_timespec *tp);
]])
local timespec = ffi.new("bench_ingest_timespec")
local CLOCK_REALTIME, CLOCK_MONOTONIC = 0, 1

local function clock_ms(clock)
   ffi.C.clock_gettime(clock, timespec)
   return tonumber(timespec.tv_sec) * 1000 + tonumber(timespec.tv_nsec) / 1e6
end

local function now_ms()
   return clock_ms(CLOCK_MONOTONIC)
end

local threads = {}
local counter = 0

function setup(thread)
   counter = counter + 1
   thread:set("tid", counter)
   table.insert(threads, thread)
end

local mode, per_request, host, cookies
local interval, next_slot
local path
local seq = 0
local request_count = 0
-- Globals, so that done() can read them with thread:get().
written = 0
ok = 0
other = 0
not_all_accepted = 0
local rnd = math.random

local PAGE = "https://courses.example.org/courses/course-v1:ExampleX+Bench101+2024"
   .. "/courseware/week%d/video%d/"
local AGENT = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko)"
   .. " Chrome/126.0.0.0 Safari/537.36"
local SPEEDS = { "0.75", "1.0", "1.25", "1.50" }
local CODES = { "html5", "dQw4w9WgXcQ", "y6kQ7Nd1L0o" }

function init(args)
   mode = args[1] or "batch"
   per_request = tonumber(args[2] or "20")
   host = args[3]
   cookies = {}
   for c in string.gmatch(args[4] or "", "%S+") do
      table.insert(cookies, c)
   end
   -- A different stream in every thread and run; the server counts any duplicate.
   math.randomseed(os.time() * 1000 + tid * 7919 + math.floor(os.clock() * 1e6))
   for _ = 1, 100 do rnd() end
   path = wrk.path
   local rate = tonumber(args[5] or "0")
   if rate > 0 then
      interval = 1000 / rate
   end
end

-- wrk's delay() hook, set by paced.lua (defining delay() at all costs every request
-- a timer, so the unpaced runs go without it).
function paced_delay()
   if not interval then
      return 0
   end
   local now = now_ms()
   local slot = math.max(next_slot or now, now)
   next_slot = slot + interval
   return math.floor(slot - now)
end

local function uuid4()
   return string.format(
      "%04x%04x-%04x-%04x-%04x-%04x%04x%04x",
      rnd(0, 0xffff), rnd(0, 0xffff), rnd(0, 0xffff),
      0x4000 + rnd(0, 0x0fff), 0x8000 + rnd(0, 0x3fff),
      rnd(0, 0xffff), rnd(0, 0xffff), rnd(0, 0xffff)
   )
end

local function payload(video)
   return string.format(
      '{"id":"i4x-ExampleX-Bench101-video-v%d","code":"%s","currentTime":%d.%03d,"speed":"%s"}',
      video, CODES[rnd(1, #CODES)], rnd(0, 1800), rnd(0, 999), SPEEDS[rnd(1, #SPEEDS)]
   )
end

local function urlencode(s)
   return (string.gsub(s, "[^%w%-_%.~]", function(c)
      return string.format("%%%02X", string.byte(c))
   end))
end

local function headers(content_type, page)
   request_count = request_count + 1
   local h = {
      ["Host"] = host,
      ["Origin"] = "http://" .. host,
      ["Content-Type"] = content_type,
      ["User-Agent"] = AGENT,
      ["Accept"] = "*/*",
      ["Accept-Language"] = "en-US,en;q=0.9",
      ["Referer"] = page,
   }
   if #cookies > 0 then
      h["Cookie"] = cookies[(request_count % #cookies) + 1]
   end
   return h
end

function request()
   written = written + 1
   local now = math.floor(clock_ms(CLOCK_REALTIME)) -- the Logger's sent_at: Date.now()
   local week, video = rnd(1, 12), rnd(1, 40)
   local page = string.format(PAGE, week, video)
   if mode == "single" then
      local body = "event_type=play_video&event=" .. urlencode(payload(video))
         .. "&page=" .. urlencode(page)
      return wrk.format("POST", path, headers("application/x-www-form-urlencoded", page), body)
   end
   local events = {}
   for i = 1, per_request do
      seq = seq + 1
      events[i] = string.format(
         '{"id":"%s","event_type":"play_video","event":%s,"page":"%s","time":%d,"seq":%d}',
         uuid4(), payload(video), page, now - rnd(0, 4000), seq
      )
   end
   local body = '{"sent_at":' .. now .. ',"events":[' .. table.concat(events, ",") .. "]}"
   return wrk.format("POST", path, headers("text/plain;charset=UTF-8", page), body)
end

function response(status, _headers, body)
   if status == 200 then
      ok = ok + 1
      -- The answer of a stored batch: every event accepted, none duplicate or failed.
      local expected = mode == "single" and 1 or per_request
      local want = string.format('"accepted":%d', expected)
      if not string.find(body, want, 1, true)
         or not string.find(body, '"duplicates":0', 1, true)
         or not string.find(body, '"failed":[]', 1, true) then
         not_all_accepted = not_all_accepted + 1
      end
   elseif status == 204 then
      ok = ok + 1
   else
      other = other + 1
   end
end

function done(summary, latency, _requests)
   local w, o, x, n = 0, 0, 0, 0
   for _, t in ipairs(threads) do
      w = w + t:get("written")
      o = o + t:get("ok")
      x = x + t:get("other")
      n = n + t:get("not_all_accepted")
   end
   -- The tail at 0.1% steps (p95.0 .. p100), so runs can be pooled for one p99.
   local tail = {}
   for k = 0, 49 do
      tail[#tail + 1] = string.format("%d", latency:percentile(95 + k / 10))
   end
   tail[#tail + 1] = string.format("%d", latency.max) -- percentile(100) gives 0
   local e = summary.errors
   io.write(string.format(
      'BENCH_RESULT {"duration_us":%d,"requests":%d,"written":%d,"ok":%d,"other":%d,'
         .. '"not_all_accepted":%d,"p50_us":%d,"p99_us":%d,"max_us":%d,"tail_us":[%s],'
         .. '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}}\n',
      summary.duration, summary.requests, w, o, x, n,
      latency:percentile(50), latency:percentile(99), latency.max, table.concat(tail, ","),
      e.connect, e.read, e.write, e.status, e.timeout
   ))
end
