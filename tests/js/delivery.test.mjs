// Queue, batching, retries and answers of the batch endpoint.
import { test } from "node:test";
import assert from "node:assert/strict";
import { setup, json, acceptAll, fakeNet, fakeWindow, MemoryStorage, state, settle, UUID } from "./harness.mjs";

test("an event is in the durable queue before any request", async () => {
  const { logger, storage, net } = setup();
  logger.log("play_video", { id: "v1" });
  const stored = storage.queue();
  assert.equal(stored.length, 1);
  assert.equal(stored[0].event_type, "play_video");
  assert.deepEqual(stored[0].event, { id: "v1" });
  assert.equal(net.calls.length, 0);
});

test("wire format: envelope, fields, text/plain body", async () => {
  const { logger, clock, net } = setup({ url: "/t/events" });
  const t0 = clock.now();
  logger.log("problem_show", { problem: "p1" });
  await clock.advance(500);
  logger.log("seq_next", "raw string");
  await clock.advance(1500);
  assert.equal(net.calls.length, 1);
  const { url, init, body } = net.calls[0];
  assert.equal(url, "/t/events");
  assert.equal(init.method, "POST");
  assert.equal(typeof init.body, "string");
  // A string body goes out as text/plain;charset=UTF-8: no CORS preflight.
  assert.equal(new Request("http://x/", init).headers.get("content-type"), "text/plain;charset=UTF-8");
  assert.deepEqual(Object.keys(body), ["sent_at", "events"]);
  assert.equal(body.sent_at, t0 + 2000);
  const [a, b] = body.events;
  assert.deepEqual(Object.keys(a).sort(), ["event", "event_type", "id", "page", "seq", "time"]);
  assert.equal(a.page, "https://lms.example/courses/c1/unit/2");
  assert.equal(a.time, t0);
  assert.equal(b.time, t0 + 500);
  assert.equal(b.event, "raw string");
  assert.equal(b.seq, a.seq + 1);
});

test("ids are unique UUID v4, seq increases", async () => {
  const { logger, storage } = setup({ maxQueue: 5000 });
  for (let i = 0; i < 300; i++) logger.log("e", { i });
  const q = storage.queue();
  assert.equal(new Set(q.map((e) => e.id)).size, 300);
  for (const e of q) assert.match(e.id, UUID);
  q.forEach((e, i) => i && assert.ok(e.seq > q[i - 1].seq));
});

test("uuid fallback without crypto.randomUUID is a v4 UUID", async () => {
  const win = fakeWindow();
  win.crypto = {};
  let n = 0;
  const { logger, storage } = setup({ random: () => ((n = (n * 7 + 3) % 16), n / 16) }, { win });
  logger.log("a");
  logger.log("b");
  const [a, b] = storage.queue();
  assert.match(a.id, UUID);
  assert.match(b.id, UUID);
  assert.notEqual(a.id, b.id);
});

test("a batch goes when batchSize events are queued", async () => {
  const { logger, clock, net } = setup();
  for (let i = 0; i < 19; i++) logger.log("e", { i });
  await settle();
  assert.equal(net.calls.length, 0);
  logger.log("e", { i: 19 });
  await settle();
  assert.equal(net.calls.length, 1);
  assert.equal(net.calls[0].body.events.length, 20);
  await clock.advance(10);
  assert.equal(logger.stats().queued, 0);
});

test("a batch goes maxWaitMs after its first event", async () => {
  const { logger, clock, net } = setup();
  logger.log("a");
  await clock.advance(1000);
  logger.log("b");
  await clock.advance(999);
  assert.equal(net.calls.length, 0);
  await clock.advance(1);
  assert.equal(net.calls.length, 1);
  assert.equal(net.calls[0].body.events.length, 2);
});

test("a batch goes when maxBatchBytes is reached, and stays under it", async () => {
  const { logger, clock, net } = setup();
  const big = "x".repeat(10_000);
  for (let i = 0; i < 4; i++) logger.log("e", big);
  await settle();
  assert.equal(net.calls.length, 0);
  logger.log("e", big); // 5 x 10 KB > 48 KB: the first 4 go now
  await settle();
  assert.equal(net.calls.length, 1);
  assert.equal(net.calls[0].body.events.length, 4);
  assert.ok(Buffer.byteLength(net.calls[0].init.body) <= 48 * 1024);
  await clock.advance(2000);
  assert.equal(net.calls.length, 2);
  assert.equal(net.calls[1].body.events.length, 1);
});

test("bytes are counted in UTF-8", async () => {
  const { logger, net } = setup({ maxBatchBytes: 1000 });
  logger.log("e", "é".repeat(300)); // 600 bytes
  logger.log("e", "é".repeat(300));
  await settle();
  assert.equal(net.calls.length, 1);
  assert.equal(net.calls[0].body.events.length, 1);
});

test("exactly one request in flight", async () => {
  const net = fakeNet((req) => "hold");
  const { logger, clock } = setup({}, { net });
  for (let i = 0; i < 45; i++) logger.log("e", { i });
  await clock.advance(10_000);
  assert.equal(net.calls.length, 1);
  net.calls[0].respond(acceptAll(net.calls[0]));
  await settle();
  assert.equal(net.calls.length, 2);
  net.calls[1].respond(acceptAll(net.calls[1]));
  await settle();
  assert.equal(net.calls.length, 2, "5 left: they wait for the batch timer");
  await clock.advance(2000);
  assert.equal(net.calls.length, 3);
  assert.deepEqual(net.calls.map((c) => c.body.events.length), [20, 20, 5]);
  assert.deepEqual(net.calls.flatMap((c) => c.body.events.map((e) => e.event.i)), [...Array(45).keys()]);
});

test("log resolves once stored; events leave the queue only after the answer", async () => {
  const net = fakeNet(() => "hold");
  const { logger, clock, storage } = setup({}, { net });
  const p = logger.log("e", { a: 1 });
  await clock.advance(2000);
  assert.deepEqual(await state(p), ["pending"]);
  assert.equal(storage.queue().length, 1);
  net.calls[0].respond(json(200, { accepted: 1, duplicates: 0, failed: [] }));
  const [st, ev] = await state(p);
  assert.equal(st, "fulfilled");
  assert.equal(ev.event_type, "e");
  assert.equal(storage.queue().length, 0);
  assert.deepEqual(logger.stats(), { queued: 0, sent: 1, retried: 0, dropped: 0 });
});

test("duplicates resolve like accepted events", async () => {
  const net = fakeNet((req) => json(200, { accepted: 0, duplicates: req.body.events.length, failed: [] }));
  const { logger, clock } = setup({}, { net });
  const ps = [logger.log("a"), logger.log("b")];
  await clock.advance(2000);
  for (const p of ps) assert.equal((await state(p))[0], "fulfilled");
  assert.equal(logger.stats().sent, 2);
});

test("failed ids are dropped, rejected with their errors, never retried", async () => {
  let bad;
  const net = fakeNet((req) => {
    bad = req.body.events[1].id;
    return json(200, { accepted: 2, duplicates: 0, failed: [{ id: bad, errors: { event: ["not an object"] } }] });
  });
  const { logger, clock, storage } = setup({}, { net });
  const ps = [logger.log("a"), logger.log("b"), logger.log("c")];
  await clock.advance(2000);
  const states = await Promise.all(ps.map(state));
  assert.deepEqual(states.map((s) => s[0]), ["fulfilled", "rejected", "fulfilled"]);
  assert.ok(states[1][1] instanceof Error);
  assert.deepEqual(states[1][1].errors, { event: ["not an object"] });
  assert.equal(storage.queue().length, 0);
  await clock.advance(120_000);
  assert.equal(net.calls.length, 1);
  assert.deepEqual(logger.stats(), { queued: 0, sent: 2, retried: 0, dropped: 1 });
});

test("400 with a JSON body drops and rejects the whole batch", async () => {
  const net = fakeNet();
  net.script.push(() => json(400, { error: "bad envelope" }));
  const { logger, clock } = setup({}, { net });
  const ps = [logger.log("a"), logger.log("b")];
  await clock.advance(2000);
  for (const p of ps) {
    const [st, e] = await state(p);
    assert.equal(st, "rejected");
    assert.deepEqual(e.errors, { error: "bad envelope" });
  }
  assert.deepEqual(logger.stats(), { queued: 0, sent: 0, retried: 0, dropped: 2 });
});

test("400 without a JSON body is retried", async () => {
  const net = fakeNet();
  net.script.push(() => new Response("<html>proxy</html>", { status: 400 }));
  const { logger, clock } = setup({}, { net });
  const p = logger.log("a");
  await clock.advance(2000);
  assert.equal(logger.stats().retried, 1);
  await clock.advance(1000);
  assert.equal((await state(p))[0], "fulfilled");
});

test("413 splits the batch in halves; a single event answered 413 is dropped", async () => {
  const net = fakeNet((req) => (req.body.events.length > 2 ? json(413) : acceptAll(req)));
  const { logger, clock } = setup({}, { net });
  for (let i = 0; i < 5; i++) logger.log("e", { i });
  await clock.advance(2000);
  assert.deepEqual(net.calls.map((c) => c.body.events.length), [5, 2, 2, 1]);
  assert.deepEqual(net.calls.slice(1).flatMap((c) => c.body.events.map((e) => e.event.i)), [0, 1, 2, 3, 4]);
  assert.deepEqual(logger.stats(), { queued: 0, sent: 5, retried: 0, dropped: 0 });

  const net2 = fakeNet(() => json(413));
  const s2 = setup({}, { net: net2 });
  const p = s2.logger.log("huge", "x");
  await s2.clock.advance(2000);
  const [st, e] = await state(p);
  assert.equal(st, "rejected");
  assert.ok(e instanceof Error);
  assert.equal(net2.calls.length, 1);
  assert.deepEqual(s2.logger.stats(), { queued: 0, sent: 0, retried: 0, dropped: 1 });
});

test("backoff grows exponentially with jitter and is capped at 60 s", async () => {
  const rand = [0, 1, 0.5, 0, 1, 0, 1, 0.5, 0.5];
  const times = [];
  const net = fakeNet(() => (times.push(clock.now()), json(503)));
  const { logger, clock } = setup({ random: () => rand.shift() ?? 0.5 }, { net });
  logger.log("e");
  await clock.advance(400_000);
  const delays = times.slice(1, 10).map((t, i) => t - times[i]);
  // base 1 s x 2^n, times a jitter factor in [0.5, 1], capped at 60 s.
  assert.deepEqual(delays, [500, 2000, 3000, 4000, 16000, 16000, 60000, 45000, 45000]);
  assert.ok(times.slice(10).every((t, i) => t - times[9 + i] <= 60000));
  assert.equal(logger.stats().retried, times.length);
});

test("backoff applies to network errors and 5xx/429, and resets after success", async () => {
  const net = fakeNet();
  net.script.push(() => new TypeError("Failed to fetch"), () => json(429), () => json(500));
  const { logger, clock } = setup({ random: () => 1 }, { net });
  const p = logger.log("e");
  await clock.advance(2000); // error -> wait 1 s
  await clock.advance(1000); // 429 -> wait 2 s
  await clock.advance(2000); // 500 -> wait 4 s
  assert.equal(net.calls.length, 3);
  await clock.advance(3999);
  assert.equal(net.calls.length, 3);
  await clock.advance(1);
  assert.equal(net.calls.length, 4);
  assert.equal((await state(p))[0], "fulfilled");
  net.script.push(() => json(502));
  logger.log("f");
  await clock.advance(2000);
  assert.equal(net.calls.length, 5);
  await clock.advance(1000); // back to 1 s after the success
  assert.equal(net.calls.length, 6);
  assert.equal(logger.stats().retried, 4);
});

test("Retry-After (seconds) is honoured", async () => {
  const net = fakeNet();
  net.script.push(() => json(429, undefined, { "Retry-After": "7" }));
  const { logger, clock } = setup({}, { net });
  logger.log("e");
  await clock.advance(2000);
  await clock.advance(6999);
  assert.equal(net.calls.length, 1);
  await clock.advance(1);
  assert.equal(net.calls.length, 2);
  assert.equal(logger.stats().queued, 0);
});

test("offline: nothing is sent until the online event", async () => {
  const win = fakeWindow({ online: false });
  const { logger, clock, net, storage } = setup({}, { win });
  const p = logger.log("e");
  await clock.advance(60_000);
  assert.equal(net.calls.length, 0);
  assert.equal(storage.queue().length, 1);
  await assert.rejects(logger.flush());
  win.navigator.onLine = true;
  win.dispatchEvent(new Event("online"));
  await settle();
  assert.equal(net.calls.length, 1);
  assert.equal((await state(p))[0], "fulfilled");
});

test("online cuts a pending backoff short", async () => {
  const win = fakeWindow();
  const net = fakeNet();
  net.script.push(() => new TypeError("offline"));
  const { logger, clock } = setup({}, { win, net });
  logger.log("e");
  await clock.advance(2000);
  assert.equal(net.calls.length, 1);
  win.dispatchEvent(new Event("online"));
  await settle();
  assert.equal(net.calls.length, 2);
  assert.equal(logger.stats().queued, 0);
});

test("flush sends at once and resolves when the queue is empty", async () => {
  const { logger, net } = setup();
  for (let i = 0; i < 30; i++) logger.log("e", { i });
  await settle();
  const f = logger.flush();
  await settle();
  assert.deepEqual(await state(f), ["fulfilled", undefined]);
  assert.deepEqual(net.calls.map((c) => c.body.events.length), [20, 10]);
  assert.deepEqual(await state(logger.flush()), ["fulfilled", undefined]);
});

test("flush rejects when the queue cannot be emptied now", async () => {
  const net = fakeNet(() => json(503));
  const { logger, clock } = setup({}, { net });
  logger.log("e");
  const f = logger.flush();
  await settle();
  const [st, e] = await state(f);
  assert.equal(st, "rejected");
  assert.ok(e instanceof Error);
  assert.equal(logger.stats().queued, 1);
  assert.equal((await state(logger.flush()))[0], "rejected", "backing off");
  await clock.advance(0);
});

test("log options.flush sends without waiting for the batch", async () => {
  const { logger, net } = setup();
  logger.log("e", {}, null, { flush: true });
  await settle();
  assert.equal(net.calls.length, 1);
});

test("maxQueue drops and counts the oldest events", async () => {
  const net = fakeNet(() => "hold");
  const { logger, storage } = setup({ maxQueue: 3, batchSize: 100 }, { net });
  const ps = [1, 2, 3, 4, 5].map((i) => logger.log("e", { i }));
  assert.deepEqual(storage.queue().map((e) => e.event.i), [3, 4, 5]);
  assert.equal((await state(ps[0]))[0], "rejected");
  assert.equal((await state(ps[1]))[0], "rejected");
  assert.deepEqual(logger.stats(), { queued: 3, sent: 0, retried: 0, dropped: 2 });
});

test("QuotaExceededError drops the oldest events and counts them", async () => {
  const storage = new MemoryStorage(1500);
  const net = fakeNet(() => "hold");
  const { logger } = setup({ batchSize: 100 }, { storage, net });
  const ps = [];
  for (let i = 0; i < 20; i++) ps.push(logger.log("e", { i, pad: "x".repeat(100) }));
  const q = storage.queue();
  assert.ok(q.length > 0 && q.length < 20);
  assert.equal(q.at(-1).event.i, 19);
  const { dropped, queued } = logger.stats();
  assert.equal(dropped, 20 - q.length);
  assert.equal(queued, q.length);
  assert.equal((await state(ps[0]))[0], "rejected");
});

test("a storage that throws something else keeps the events in memory", async () => {
  const storage = new MemoryStorage();
  storage.setItem = () => {
    throw new DOMException("denied", "SecurityError");
  };
  const { logger, clock, net } = setup({}, { storage });
  const p = logger.log("e");
  assert.equal(logger.stats().queued, 1);
  await clock.advance(2000);
  assert.equal(net.calls.length, 1);
  assert.equal((await state(p))[0], "fulfilled");
});

test("a bad eventType returns a rejected promise and never throws", async () => {
  const { logger, storage } = setup();
  for (const bad of [undefined, null, "", 42, {}, ["x"]]) {
    let p;
    assert.doesNotThrow(() => {
      p = logger.log(bad, {});
    });
    const [st, e] = await state(p);
    assert.equal(st, "rejected");
    assert.ok(e instanceof TypeError);
  }
  const cyclic = {};
  cyclic.self = cyclic;
  assert.equal((await state(logger.log("e", cyclic)))[0], "rejected");
  assert.equal(storage.queue().length, 0);
});

test("ignored rejections make no unhandledRejection", async () => {
  const seen = [];
  const on = (e) => seen.push(e);
  process.on("unhandledRejection", on);
  try {
    const net = fakeNet(() => json(413));
    const { logger, clock } = setup({}, { net });
    logger.log("");
    logger.log("e");
    await clock.advance(2000);
    logger.flush();
    await settle();
  } finally {
    process.off("unhandledRejection", on);
  }
  assert.deepEqual(seen, []);
});

test("the payload is a snapshot taken at log()", async () => {
  const { logger, storage } = setup();
  const data = { n: 1 };
  logger.log("e", data);
  data.n = 2;
  assert.equal(storage.queue()[0].event.n, 1);
  logger.log("e");
  assert.deepEqual(storage.queue()[1].event, {});
});

test("configure changes the URL and returns the Logger", async () => {
  const { logger, clock, net } = setup();
  assert.equal(logger.configure({ url: "/other" }), logger);
  logger.log("e");
  await clock.advance(2000);
  assert.equal(net.calls[0].url, "/other");
});
