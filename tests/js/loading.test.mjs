// The ways to load the Logger: logger.js as a classic <script> or under
// CommonJS, logger.mjs (built from logger.js) as an ES module.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import vm from "node:vm";
import { fakeClock, fakeNet, MemoryStorage, settle } from "./harness.mjs";
import * as wrapper from "../../static/js/logger.mjs";

const file = new URL("../../static/js/logger.js", import.meta.url);
const src = readFileSync(file, "utf8");
const dts = readFileSync(new URL("../../static/js/logger.d.ts", import.meta.url), "utf8");

/** A browser-like global running logger.js as a classic script. */
const minified = readFileSync(new URL("../../static/js/logger.min.js", import.meta.url), "utf8");

function page(dataset, prefix = "", code = src) {
  const clock = fakeClock();
  const net = fakeNet();
  const doc = new EventTarget();
  doc.visibilityState = "visible";
  doc.currentScript = dataset ? { dataset } : null;
  const ctx = vm.createContext({
    document: doc,
    navigator: { onLine: true },
    location: { href: "https://lms.example/page" },
    localStorage: new MemoryStorage(),
    fetch: net.fetch,
    setTimeout: clock.setTimeout,
    clearTimeout: clock.clearTimeout,
    Blob,
    console,
    crypto: globalThis.crypto,
    EventTarget,
    Event,
    AbortController,
  });
  ctx.window = ctx;
  const t = new EventTarget();
  ctx.addEventListener = t.addEventListener.bind(t);
  ctx.dispatchEvent = t.dispatchEvent.bind(t);
  const run = () => vm.runInContext(prefix + code, ctx, { filename: "logger.js" });
  run();
  return { ctx, clock, net, run };
}

test("classic script: window.Logger with the tag's data-endpoint, and log_event", async () => {
  const { ctx, clock, net } = page({ endpoint: "/x/activity/events" });
  assert.equal(typeof ctx.Logger.log, "function");
  assert.equal(ctx.FlaskTrackingLogger, undefined, "no global beyond Logger and log_event");
  ctx.log_event("play_video", { id: "v" });
  await clock.advance(2000);
  assert.equal(net.calls.length, 1);
  assert.equal(net.calls[0].url, "/x/activity/events");
  assert.equal(net.calls[0].body.events[0].event_type, "play_video");
  assert.equal(net.calls[0].body.events[0].page, "https://lms.example/page");
  await settle();
  assert.equal(ctx.Logger.stats().sent, 1);
});

test("no data-endpoint (or module mode, no currentScript): the default URL", async () => {
  for (const ds of [null, {}]) {
    const { ctx, clock, net } = page(ds);
    ctx.Logger.log("e");
    await clock.advance(2000);
    assert.equal(net.calls[0].url, "/activity/events");
  }
});

test("logger.min.js works as the classic script does, and names its source map", async () => {
  const { ctx, clock, net } = page({ endpoint: "/min/events" }, "", minified);
  ctx.log_event("seq_next", { old: 1, new: 2, id: "s" });
  await clock.advance(2000);
  assert.equal(net.calls[0].url, "/min/events");
  assert.equal(net.calls[0].body.events[0].event_type, "seq_next");
  await settle();
  assert.equal(ctx.Logger.stats().sent, 1);
  assert.match(minified, /\n\/\/# sourceMappingURL=logger\.min\.js\.map$/);
  const map = JSON.parse(readFileSync(new URL("../../static/js/logger.min.js.map", import.meta.url), "utf8"));
  assert.equal(map.file, "logger.min.js");
  assert.deepEqual(map.sources, ["logger.js"]);
});

test("loading twice keeps one Logger", () => {
  const { ctx, run } = page({ endpoint: "/a" });
  const first = ctx.Logger;
  run();
  assert.equal(ctx.Logger, first);
});

test("logger.js is a classic script: no import/export, and strict-mode clean", async () => {
  assert.doesNotThrow(() => new vm.Script(src));
  assert.doesNotMatch(src, /^\s*(import|export)\s/m);
  // Run as strict code in a page: a sloppy-only construct would throw here.
  const { ctx, clock, net } = page({ endpoint: "/strict" }, '"use strict";');
  ctx.Logger.log("e");
  await clock.advance(2000);
  assert.equal(net.calls.at(-1).url, "/strict");
});

test("ES module exports, and the package name resolves to the same module", async () => {
  assert.equal(typeof wrapper.createLogger, "function");
  assert.equal(globalThis.FlaskTrackingLogger, undefined);
  assert.equal(wrapper.default, undefined, "no page, no window.Logger in node");
  assert.equal(wrapper.Logger, undefined);
  const pkg = await import("flask-tracking-logger");
  assert.equal(pkg.createLogger, wrapper.createLogger);
});

test("a CommonJS host gets module.exports = { createLogger }", () => {
  const module = { exports: {} };
  vm.runInNewContext(src, { module });
  assert.equal(typeof module.exports.createLogger, "function");
});

test("a Logger made without any window works in memory", async () => {
  const clock = fakeClock();
  const net = fakeNet();
  const logger = wrapper.createLogger(undefined, {
    now: clock.now, setTimeout: clock.setTimeout, clearTimeout: clock.clearTimeout, fetch: net.fetch,
  });
  const p = logger.log("e", { a: 1 });
  await clock.advance(2000);
  assert.equal(net.calls[0].body.events[0].page, "");
  assert.equal((await p).event_type, "e");
});

test("logger.d.ts declares every public function", () => {
  const clock = fakeClock();
  const logger = wrapper.createLogger({}, { setTimeout: clock.setTimeout, storage: new MemoryStorage() });
  const names = [
    ...Object.keys(logger),
    ...Object.keys(logger.video({ addEventListener() {}, removeEventListener() {} })),
    ...Object.keys(logger.sequence("s")),
    ...Object.keys(logger.book("c")),
    ...Object.keys(logger.problem("p")),
  ];
  for (const name of new Set(names)) assert.match(dts, new RegExp(`\\b${name}\\s*[(?:]`), name);
  assert.match(dts, /log_event/);
  assert.match(dts, /export function createLogger|export declare function createLogger/);
});
