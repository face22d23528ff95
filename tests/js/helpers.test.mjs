// listen(), video, sequence, book/PDF.js and problem helpers.
import { test } from "node:test";
import assert from "node:assert/strict";
import { setup, fakeNet } from "./harness.mjs";

/** A Logger whose events stay queued (no answer): evs() lists them. */
function held(options) {
  const s = setup(options, { net: fakeNet(() => "hold") });
  s.evs = (type) => (s.storage.queue() || []).filter((e) => !type || e.event_type === type);
  s.types = () => s.evs().map((e) => e.event_type);
  return s;
}

test("listeners get (eventType, data, element), filtered by type and element", () => {
  const { logger } = held();
  const el = { id: "button" };
  const any = [];
  const only = [];
  logger.listen("problem_check", null, (...a) => any.push(a));
  logger.listen("problem_check", el, (...a) => only.push(a));
  logger.log("problem_check", "a=1", el);
  logger.log("problem_check", "a=2");
  logger.log("problem_show", {}, el);
  assert.deepEqual(any, [["problem_check", "a=1", el], ["problem_check", "a=2", undefined]]);
  assert.deepEqual(only, [["problem_check", "a=1", el]]);
});

test("a throwing listener is isolated and reported once", (t) => {
  const errors = t.mock.method(console, "error", () => {});
  const { logger, storage } = held();
  const calls = [];
  logger.listen("e", null, () => {
    throw new Error("boom");
  });
  logger.listen("e", null, () => calls.push(1));
  let p;
  assert.doesNotThrow(() => {
    p = logger.log("e", {});
    logger.log("e", {});
  });
  assert.ok(p instanceof Promise);
  assert.deepEqual(calls, [1, 1]);
  assert.equal(storage.queue().length, 2);
  assert.equal(errors.mock.callCount(), 1);
  assert.equal(errors.mock.calls[0].arguments[0].message, "boom");
});

function fakeVideo(props = {}) {
  const v = new EventTarget();
  Object.assign(v, { currentTime: 0, playbackRate: 1, duration: NaN, paused: true, ended: false, seeking: false, readyState: 0 }, props);
  v.fire = (type, changes = {}) => {
    Object.assign(v, changes);
    v.dispatchEvent(new Event(type));
  };
  return v;
}

test("video: HTML5 element, play once per run, pause, seek, speed, stop", () => {
  const { logger, evs, types } = held();
  const v = fakeVideo();
  const handle = logger.video(v, { id: "vid1", code: "html5" });
  v.fire("loadedmetadata", { duration: 120.5, readyState: 1 });
  assert.deepEqual(evs("load_video")[0].event, { id: "vid1", code: "html5", currentTime: 0, speed: "1.0", duration: 120.5 });

  v.fire("play", { paused: false });
  v.fire("playing");
  v.fire("timeupdate", { currentTime: 3.25 });
  v.fire("waiting");
  v.fire("playing"); // after buffering: same run
  assert.deepEqual(types(), ["load_video", "play_video"]);

  // seek while playing: no new play_video
  v.fire("timeupdate", { currentTime: 10 });
  v.fire("seeking", { currentTime: 30, seeking: true });
  v.fire("timeupdate");
  v.fire("seeked", { seeking: false });
  v.fire("playing");
  assert.deepEqual(evs("seek_video")[0].event, {
    id: "vid1", code: "html5", currentTime: 30, speed: "1.0", duration: 120.5,
    old_time: 10, new_time: 30, type: "onSlideSeek",
  });
  assert.equal(evs("play_video").length, 1);

  v.fire("pause", { paused: true, currentTime: 31.5 });
  assert.equal(evs("pause_video")[0].event.currentTime, 31.5);
  // seek while paused, then play: a new run
  v.fire("seeking", { currentTime: 5, seeking: true });
  v.fire("seeked", { seeking: false });
  v.fire("playing", { paused: false });
  assert.equal(evs("play_video").length, 2);
  assert.deepEqual(evs("seek_video")[1].event.old_time, 31.5);

  v.fire("ratechange", { playbackRate: 1.5, currentTime: 6 });
  v.fire("ratechange"); // no change: nothing
  assert.deepEqual(evs("speed_change_video").map((e) => e.event), [{
    id: "vid1", code: "html5", currentTime: 6, speed: "1.50", duration: 120.5,
    current_time: 6, old_speed: "1.0", new_speed: "1.50",
  }]);
  v.fire("ratechange", { playbackRate: 0.75 });
  assert.equal(evs("speed_change_video")[1].event.old_speed, "1.50");
  assert.equal(evs("speed_change_video")[1].event.new_speed, "0.75");

  // the end: the browser fires pause (ended is already true), then ended
  v.fire("pause", { paused: true, ended: true, currentTime: 120.5 });
  v.fire("ended");
  assert.deepEqual(types().slice(-1), ["stop_video"]);
  assert.equal(evs("pause_video").length, 1);
  v.fire("playing", { ended: false, paused: false, currentTime: 0 });
  assert.equal(evs("play_video").length, 3);

  const n = evs().length;
  handle.destroy();
  v.fire("pause");
  v.fire("playing");
  v.fire("ratechange", { playbackRate: 2 });
  assert.equal(evs().length, n);
});

test("video: an element with metadata already loaded logs load_video at once", () => {
  const { logger, evs } = held();
  logger.video(fakeVideo({ readyState: 4, duration: Infinity, currentTime: 2, playbackRate: 2 }), { id: "live", code: "c" });
  assert.deepEqual(evs("load_video")[0].event, { id: "live", code: "c", currentTime: 2, speed: "2.0" });
});

test("video: metadata loaded while its event is still pending logs load_video once", () => {
  const { logger, types } = held();
  const v = fakeVideo({ readyState: 1, duration: 60 });
  logger.video(v, { id: "vid1", code: "html5" });
  v.fire("loadedmetadata");
  assert.deepEqual(types(), ["load_video"]);
  v.fire("emptied", { readyState: 0 });
  v.fire("loadedmetadata", { readyState: 1 });
  assert.deepEqual(types(), ["load_video", "load_video"]);
});

function fakeYouTube() {
  const handlers = {};
  const p = {
    state: -1, time: 0, rate: 1, dur: 300,
    getPlayerState: () => p.state,
    getCurrentTime: () => p.time,
    getPlaybackRate: () => p.rate,
    getDuration: () => p.dur,
    addEventListener: (name, f) => ((handlers[name] ||= []).push(f)),
    removeEventListener: (name, f) => (handlers[name] = (handlers[name] || []).filter((h) => h !== f)),
    emit: (name, data) => (handlers[name] || []).forEach((f) => f({ target: p, data })),
    state_: (s, time = p.time) => {
      p.state = s;
      p.time = time;
      p.emit("onStateChange", s);
    },
  };
  return p;
}

test("video: YouTube IFrame API player", async () => {
  const { logger, clock, evs, types } = held();
  const yt = fakeYouTube();
  const handle = logger.video(yt, { id: "vid2", code: "dQw4w9WgXcQ" });
  assert.deepEqual(evs("load_video")[0].event, { id: "vid2", code: "dQw4w9WgXcQ", currentTime: 0, speed: "1.0", duration: 300 });

  yt.state_(3);
  yt.state_(1);
  await clock.advance(4000);
  yt.state_(3, 4); // buffering
  yt.state_(1, 4);
  assert.deepEqual(types(), ["load_video", "play_video"]);
  await clock.advance(6000);
  yt.state_(2, 10);
  assert.deepEqual(types(), ["load_video", "play_video", "pause_video"]);
  assert.equal(evs("pause_video")[0].event.currentTime, 10);
  await clock.advance(60_000); // paused: time does not move
  yt.state_(1, 10);
  assert.equal(evs("play_video").length, 2);
  await clock.advance(5000);
  yt.state_(3, 100); // a seek to 100 s while playing from 10 s, 5 s ago
  yt.state_(1, 100);
  const [seek] = evs("seek_video");
  assert.equal(seek.event.old_time, 15);
  assert.equal(seek.event.new_time, 100);
  assert.equal(seek.event.type, "onSlideSeek");
  assert.equal(evs("play_video").length, 2);

  yt.rate = 2;
  yt.emit("onPlaybackRateChange", 2);
  assert.deepEqual(evs("speed_change_video")[0].event, {
    id: "vid2", code: "dQw4w9WgXcQ", currentTime: 100, speed: "2.0", duration: 300,
    current_time: 100, old_speed: "1.0", new_speed: "2.0",
  });
  await clock.advance(10_000);
  yt.state_(0, 120); // 10 s at 2x: no seek
  assert.deepEqual(types().slice(-1), ["stop_video"]);
  assert.equal(evs("seek_video").length, 1);

  handle.destroy();
  const n = evs().length;
  yt.state_(1);
  yt.emit("onPlaybackRateChange", 1);
  assert.equal(evs().length, n);
});

test("sequence: seq_goto / seq_next / seq_prev", () => {
  const { logger, evs } = held();
  const s = logger.sequence("block-v1:seq");
  s.next(1, 2);
  s.prev(2, 1);
  s.goto(1, 5);
  assert.deepEqual(evs().map((e) => [e.event_type, e.event]), [
    ["seq_next", { old: 1, new: 2, id: "block-v1:seq" }],
    ["seq_prev", { old: 2, new: 1, id: "block-v1:seq" }],
    ["seq_goto", { old: 1, new: 5, id: "block-v1:seq" }],
  ]);
});

test("book: one event per action, tracking the current page", () => {
  const { logger, evs } = held();
  const b = logger.book("ch1");
  b.next();
  b.next();
  b.prev();
  b.goto(2, 10);
  b.next(11);
  b.goto(11, 11); // not a change: nothing
  assert.deepEqual(evs().map((e) => e.event), [
    { type: "nextpage", old: 1, new: 2, chapter: "ch1" },
    { type: "nextpage", old: 2, new: 3, chapter: "ch1" },
    { type: "prevpage", old: 3, new: 2, chapter: "ch1" },
    { type: "gotopage", old: 2, new: 10, chapter: "ch1" },
    { type: "nextpage", old: 10, new: 11, chapter: "ch1" },
  ]);
  assert.ok(evs().every((e) => e.event_type === "book"));
  assert.equal(logger.book("ch1"), b, "one object per chapter");
  assert.notEqual(logger.book("ch2"), b);
});

function fakeBus() {
  const h = {};
  return {
    on: (n, f) => (h[n] ||= []).push(f),
    off: (n, f) => (h[n] = h[n].filter((x) => x !== f)),
    dispatch: (n, e) => (h[n] || []).forEach((f) => f(e)),
    count: (n) => (h[n] || []).length,
  };
}

test("book: the PDF.js event bus adapter, without double logging", () => {
  const { logger, evs } = held();
  const bus = fakeBus();
  const b = logger.book("ch3", 4);
  const sub = logger.book.pdfjs(bus, "ch3");
  assert.equal(bus.count("pagechanging"), 1);
  bus.dispatch("pagechanging", { source: {}, pageNumber: 5, previous: 4 });
  bus.dispatch("pagechanging", { pageNumber: 4, previous: 5 });
  bus.dispatch("pagechanging", { pageNumber: 9, previous: 4 });
  bus.dispatch("pagechanging", { pageNumber: 8 }); // no previous: the tracked page
  // the page's own buttons log first, then PDF.js reports the same change
  b.next();
  bus.dispatch("pagechanging", { pageNumber: 9, previous: 8 });
  // and the other way round
  bus.dispatch("pagechanging", { pageNumber: 10, previous: 9 });
  b.next(10);
  assert.deepEqual(evs().map((e) => [e.event.type, e.event.old, e.event.new]), [
    ["nextpage", 4, 5],
    ["prevpage", 5, 4],
    ["gotopage", 4, 9],
    ["prevpage", 9, 8],
    ["nextpage", 8, 9],
    ["nextpage", 9, 10],
  ]);
  sub.destroy();
  assert.equal(bus.count("pagechanging"), 0);
  assert.equal(logger.pdfjs, logger.book.pdfjs);
});

test("problem: query strings of answers, as edX sends them", () => {
  const { logger, evs } = held();
  const p = logger.problem("block-v1:x+type@problem+block@p1");
  p.check({ input_p1_2_1: "a b&c=d", "input_p1_3_1[]": ["choice_0", "choice_2"], input_p1_4_1: "été/√" });
  const fd = new FormData();
  fd.append("input_p1_2_1", "42");
  fd.append("input_p1_3_1[]", "choice_1");
  p.save(fd);
  p.reset(new URLSearchParams("input_p1_2_1=x+y"));
  p.reset();
  p.check("input_p1_2_1=already%20encoded");
  p.show();
  assert.deepEqual(evs().map((e) => [e.event_type, e.event]), [
    ["problem_check", "input_p1_2_1=a%20b%26c%3Dd&input_p1_3_1%5B%5D=choice_0&input_p1_3_1%5B%5D=choice_2&input_p1_4_1=%C3%A9t%C3%A9%2F%E2%88%9A"],
    ["problem_save", "input_p1_2_1=42&input_p1_3_1%5B%5D=choice_1"],
    ["problem_reset", "input_p1_2_1=x%20y"],
    ["problem_reset", ""],
    ["problem_check", "input_p1_2_1=already%20encoded"],
    ["problem_show", { problem: "block-v1:x+type@problem+block@p1" }],
  ]);
});

test("problem: empty values, null and numbers", () => {
  const { logger, evs } = held();
  logger.problem("p").check({ a: "", b: null, c: 3, d: [] });
  assert.equal(evs()[0].event, "a=&b=&c=3");
});
