// Logger.stop(): no timer and no page listener left, nothing sent after it,
// and a Node process that made a Logger exits on its own.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { setup, state, settle } from "./harness.mjs";

const MODULE = fileURLToPath(new URL("../../static/js/logger.mjs", import.meta.url));

test("stop() clears every timer: batch wait, backoff and heartbeat", async () => {
  const { logger, clock, net } = setup();
  net.script.push(() => new Error("network down"));
  logger.log("a", {}, null, { flush: true }); // fails: a backoff timer
  await settle();
  logger.log("b"); // queued behind the backoff
  assert.ok(clock.pending().length >= 2, "heartbeat and backoff are pending");
  logger.stop();
  assert.deepEqual(clock.pending(), []);
});

test("stop() clears the wait of a batch that is not full", async () => {
  const { logger, clock } = setup();
  logger.log("a");
  assert.ok(clock.pending().includes(2000));
  logger.stop();
  assert.deepEqual(clock.pending(), []);
});

test("after stop() nothing is sent, and events logged stay queued in storage", async () => {
  const { logger, clock, net, storage } = setup();
  logger.stop();
  const p = logger.log("after", { n: 1 });
  await clock.advance(120_000);
  assert.equal(net.calls.length, 0);
  assert.deepEqual(await state(p), ["pending"]);
  assert.equal(storage.queue()[0].event_type, "after");
  const [status, error] = await state(logger.flush());
  assert.equal(status, "rejected");
  assert.match(error.message, /cannot send now/);
});

test("stop() removes the page listeners: no page_close, no beacon, no retry when online", async () => {
  const { logger, win, beacons, clock, net } = setup();
  logger.log("e");
  logger.stop();
  win.setVisibility("hidden");
  win.dispatchEvent(new Event("pagehide"));
  win.dispatchEvent(new Event("online"));
  await clock.advance(10_000);
  assert.equal(beacons.length, 0);
  assert.equal(net.calls.length, 0);
  assert.equal(logger.stats().queued, 1, "no page_close logged");
});

test("stop() releases the queue: the next Logger on the storage adopts it at once", async () => {
  const first = setup();
  first.logger.stop();
  first.logger.log("left behind");
  const second = setup({}, { storage: first.storage });
  assert.equal(second.logger.stats().queued, 1);
  await second.logger.flush();
  assert.equal(second.net.calls[0].body.events[0].event_type, "left behind");
});

test("a request in flight at stop() still settles its events; stop() twice is harmless", async () => {
  const { logger, net, clock } = setup();
  net.script.push(() => "hold");
  const p = logger.log("e", {}, null, { flush: true });
  await settle();
  logger.stop();
  logger.stop();
  net.calls[0].respond(new Response(JSON.stringify({ accepted: 1, duplicates: 0, failed: [] })));
  assert.equal((await p).event_type, "e");
  assert.deepEqual(clock.pending(), []);
});

/** Runs `code` in a child Node process (ESM); resolves with {code, signal, stdout, ms}. */
function child(code, timeoutMs = 10_000) {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const proc = spawn(process.execPath, ["--input-type=module", "-e", code], { stdio: ["ignore", "pipe", "inherit"] });
    let stdout = "";
    proc.stdout.on("data", (chunk) => (stdout += chunk));
    const timer = setTimeout(() => {
      proc.kill("SIGKILL");
      reject(new Error(`the child process did not exit within ${timeoutMs} ms; it printed: ${stdout}`));
    }, timeoutMs);
    proc.on("exit", (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, ms: Date.now() - started });
    });
  });
}

// A Logger with real timers, sending to a fetch that answers like the server.
const CHILD = (stop) => `
  import { createLogger } from ${JSON.stringify(MODULE)};
  const fetch = async (url, init) => new Response(JSON.stringify({
    accepted: JSON.parse(init.body).events.length, duplicates: 0, failed: [] }));
  const logger = createLogger(undefined, { fetch });
  await logger.log("node_event", { n: 1 }, null, { flush: true });
  ${stop ? "logger.stop();" : ""}
  console.log(JSON.stringify({ timers: process.getActiveResourcesInfo().filter((r) => r === "Timeout").length }));
  ${stop ? "" : "process.exit(0);"}
`;

test("a Node process that creates a Logger and calls stop() exits on its own", async () => {
  const { code, signal, stdout, ms } = await child(CHILD(true));
  assert.equal(signal, null);
  assert.equal(code, 0);
  assert.deepEqual(JSON.parse(stdout), { timers: 0 });
  console.log(`the child process exited by itself in ${ms} ms`);
});

test("without stop() the heartbeat timer would keep that process alive", async () => {
  const { stdout } = await child(CHILD(false));
  assert.deepEqual(JSON.parse(stdout), { timers: 1 });
});
