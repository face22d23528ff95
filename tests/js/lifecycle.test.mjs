// Tabs and page lifecycle: heartbeat, adoption of abandoned queues,
// page_close with sendBeacon on hide.
import { test } from "node:test";
import assert from "node:assert/strict";
import { setup, fakeNet, fakeWindow, MemoryStorage, state, settle } from "./harness.mjs";

const NOW = 1_700_000_000_000; // the fake clock's start

function abandoned(storage, tab, events, heartbeat) {
  storage.setItem(`ft:q:${tab}`, JSON.stringify(events));
  if (heartbeat !== undefined) storage.setItem(`ft:hb:${tab}`, String(heartbeat));
}

const ev = (id, seq) => ({ id, event_type: "old", event: {}, page: "https://lms.example/", time: NOW - 60_000, seq });

test("the queue key is per tab and a heartbeat is kept", async () => {
  const { logger, clock, storage } = setup();
  logger.log("e");
  const keys = [...storage.map.keys()];
  const q = keys.find((k) => k.startsWith("ft:q:"));
  const hb = keys.find((k) => k.startsWith("ft:hb:"));
  assert.ok(q && hb);
  assert.equal(q.slice(5), hb.slice(6));
  assert.equal(Number(storage.getItem(hb)), NOW);
  await clock.advance(5000);
  assert.equal(Number(storage.getItem(hb)), NOW + 5000);
});

test("a new tab adopts a queue whose heartbeat is older than 10 s", async () => {
  const storage = new MemoryStorage();
  abandoned(storage, "dead", [ev("11111111-1111-4111-8111-111111111111", 1), ev("22222222-2222-4222-8222-222222222222", 2)], NOW - 10_001);
  abandoned(storage, "gone", [ev("33333333-3333-4333-8333-333333333333", 7)]); // no heartbeat at all
  abandoned(storage, "alive", [ev("44444444-4444-4444-8444-444444444444", 1)], NOW - 3000);
  const { logger, clock, net } = setup({}, { storage });
  assert.equal(storage.getItem("ft:q:dead"), null);
  assert.equal(storage.getItem("ft:hb:dead"), null);
  assert.equal(storage.getItem("ft:q:gone"), null);
  assert.notEqual(storage.getItem("ft:q:alive"), null, "a live tab keeps its queue");
  assert.equal(logger.stats().queued, 3);
  assert.equal(storage.queue().length, 3);
  await clock.advance(2000);
  assert.equal(net.calls.length, 1);
  assert.deepEqual(net.calls[0].body.events.map((e) => e.seq).sort(), [1, 2, 7]);
  assert.equal(logger.stats().queued, 0);
});

test("a tab that stops beating is adopted by the heartbeat of another", async () => {
  const storage = new MemoryStorage();
  abandoned(storage, "other", [ev("55555555-5555-4555-8555-555555555555", 1)], NOW - 1000);
  const { logger, clock } = setup({}, { storage });
  assert.equal(logger.stats().queued, 0);
  await clock.advance(5000);
  assert.equal(logger.stats().queued, 0);
  await clock.advance(5000); // its heartbeat is now 11 s old
  assert.equal(storage.getItem("ft:q:other"), null);
  assert.equal(logger.stats().queued, 1);
  await clock.advance(2000);
  assert.equal(logger.stats().sent, 1);
});

test("adopted events already queued are not duplicated; corrupt queues are dropped", async () => {
  const storage = new MemoryStorage();
  const e = ev("66666666-6666-4666-8666-666666666666", 1);
  abandoned(storage, "a", [e], 0);
  abandoned(storage, "b", [e], 0);
  storage.setItem("ft:q:c", "{not json");
  const { logger } = setup({}, { storage });
  assert.equal(logger.stats().queued, 1);
  assert.equal(storage.getItem("ft:q:c"), null);
});

test("storageKey prefixes the keys", async () => {
  const { logger, storage } = setup({ storageKey: "x1" });
  logger.log("e");
  assert.ok([...storage.map.keys()].every((k) => k.startsWith("x1:")));
});

test("page_close on hide: once, with the visible time, whole queue by sendBeacon", async () => {
  const net = fakeNet(() => "hold");
  const { logger, clock, storage, win, beacons } = setup({ url: "/ev" }, { net });
  for (let i = 0; i < 25; i++) logger.log("e", { i });
  await clock.advance(7000);
  win.setVisibility("hidden");
  assert.equal(beacons.length, 2);
  assert.equal(beacons[0].url, "/ev");
  const sent = beacons.flatMap((b) => b.body.events);
  assert.equal(sent.length, 26);
  const close = sent.at(-1);
  assert.equal(close.event_type, "page_close");
  assert.deepEqual(close.event, { visible_ms: 7000 });
  assert.ok(beacons.every((b) => typeof b.body.sent_at === "number"));
  // The beacon has no answer: everything stays queued for a later resend.
  assert.equal(storage.queue().length, 26);
  win.dispatchEvent(new Event("pagehide"));
  assert.equal(beacons.length, 2, "one page_close per hide");
  win.setVisibility("visible");
  await clock.advance(3000);
  win.setVisibility("hidden");
  const again = beacons.slice(2).flatMap((b) => b.body.events).filter((e) => e.event_type === "page_close");
  // The queue still holds the first page_close (its request has no answer yet).
  assert.deepEqual(again.map((e) => e.event), [{ visible_ms: 7000 }, { visible_ms: 3000 }]);
});

test("pagehide alone sends page_close and makes the queue adoptable at once", async () => {
  const { logger, storage, win, beacons } = setup();
  logger.log("e");
  win.dispatchEvent(new Event("pagehide"));
  assert.equal(beacons.length, 1);
  const hb = [...storage.map.keys()].find((k) => k.startsWith("ft:hb:"));
  assert.equal(storage.getItem(hb), "0");
  // The next page load (same storage) adopts and sends it.
  const next = setup({}, { storage });
  assert.equal(next.logger.stats().queued, 2);
  await next.clock.advance(2000);
  assert.deepEqual(next.net.calls[0].body.events.map((e) => e.event_type), ["e", "page_close"]);
});

test("page_close falls back to fetch keepalive when sendBeacon fails", async () => {
  for (const sendBeacon of [() => false, undefined, () => { throw new TypeError("Illegal invocation"); }]) {
    const net = fakeNet(() => "hold");
    const { logger, win } = setup({ sendBeacon }, { net });
    logger.log("e");
    win.setVisibility("hidden");
    assert.equal(net.calls.length, 1);
    assert.equal(net.calls[0].init.keepalive, true);
    assert.deepEqual(net.calls[0].body.events.map((e) => e.event_type), ["e", "page_close"]);
  }
});

test("the default sendBeacon calls navigator.sendBeacon as a method", async () => {
  const win = fakeWindow();
  const got = [];
  win.navigator.sendBeacon = function (url, body) {
    assert.equal(this, win.navigator);
    got.push([url, body]);
    return true;
  };
  const { createLogger, fakeClock } = await import("./harness.mjs");
  const clock = fakeClock();
  const logger = createLogger(win, { now: clock.now, setTimeout: clock.setTimeout, clearTimeout: clock.clearTimeout, storage: new MemoryStorage() });
  logger.log("e");
  win.setVisibility("hidden");
  assert.equal(got.length, 1);
  assert.equal(typeof got[0][1], "string");
});

test("a page_close promise resolves when it is later sent normally", async () => {
  const { logger, clock, win, net } = setup();
  logger.log("e");
  win.setVisibility("hidden");
  win.setVisibility("visible");
  await clock.advance(2000);
  assert.equal(net.calls.length, 1);
  assert.deepEqual(net.calls[0].body.events.map((e) => e.event_type), ["e", "page_close"]);
  assert.equal(logger.stats().queued, 0);
});

test("back from the bfcache: the heartbeat is written again at once", async () => {
  const { logger, clock, storage, win } = setup();
  logger.log("e");
  win.dispatchEvent(new Event("pagehide"));
  const hb = [...storage.map.keys()].find((k) => k.startsWith("ft:hb:"));
  assert.equal(storage.getItem(hb), "0");
  await clock.advance(1000);
  win.dispatchEvent(new Event("pageshow"));
  assert.equal(Number(storage.getItem(hb)), NOW + 1000);
  assert.equal(storage.queue().length, 2, "its own queue is rewritten too");
});
