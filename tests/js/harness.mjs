// Test doubles for the Logger unit tests (not a test file itself): a fake
// clock with a timer queue that only moves when told to, a scripted fake
// fetch, an in-memory localStorage and a window-like EventTarget.
import { createLogger } from "../../static/js/logger.mjs";

export { createLogger };

export const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/** Lets every pending promise callback run (no real time passes). */
export async function settle() {
  for (let i = 0; i < 3; i++) await new Promise((r) => setImmediate(r));
}

export function fakeClock(start = 1_700_000_000_000) {
  let now = start;
  let next = 0;
  const timers = [];
  const clock = {
    now: () => now,
    setTimeout(f, ms) {
      const id = ++next;
      timers.push({ id, at: now + Math.max(0, Number(ms) || 0), f });
      return id;
    },
    clearTimeout(id) {
      const i = timers.findIndex((t) => t.id === id);
      if (i >= 0) timers.splice(i, 1);
    },
    /** Delays of the pending timers, soonest first. */
    pending: () => timers.map((t) => t.at - now).sort((a, b) => a - b),
    /** Moves the clock forward, running the timers that fall due in order. */
    async advance(ms) {
      const end = now + ms;
      await settle();
      for (;;) {
        timers.sort((a, b) => a.at - b.at || a.id - b.id);
        const t = timers[0];
        if (!t || t.at > end) break;
        timers.shift();
        now = t.at;
        t.f();
        await settle();
      }
      now = end;
      await settle();
    },
  };
  return clock;
}

export class MemoryStorage {
  constructor(quota = Infinity) {
    this.map = new Map();
    this.quota = quota;
    this.writes = [];
  }
  get length() {
    return this.map.size;
  }
  key(i) {
    return [...this.map.keys()][i] ?? null;
  }
  getItem(k) {
    return this.map.has(k) ? this.map.get(k) : null;
  }
  setItem(k, v) {
    v = String(v);
    let size = v.length + k.length;
    for (const [k2, v2] of this.map) if (k2 !== k) size += k2.length + v2.length;
    if (size > this.quota) throw new DOMException("quota exceeded", "QuotaExceededError");
    this.map.set(k, v);
    this.writes.push([k, v]);
  }
  removeItem(k) {
    this.map.delete(k);
  }
  /** The queue last written under a key starting with prefix, parsed. */
  queue(prefix = "ft:q:") {
    const w = this.writes.findLast(([k]) => k.startsWith(prefix));
    return w && this.map.has(w[0]) ? JSON.parse(this.map.get(w[0])) : undefined;
  }
}

export function json(status, body, headers = {}) {
  return new Response(body === undefined ? "" : JSON.stringify(body), { status, headers });
}

/** The answer of a server that stores every event of the batch. */
export const acceptAll = (req) => json(200, { accepted: req.body.events.length, duplicates: 0, failed: [] });

/**
 * A fake fetch. Each request takes the next scripted handler (or the default
 * one): a handler returns a Response, throws/returns an Error (network error)
 * or returns "hold" to leave the request pending (req.respond(res) later).
 */
export function fakeNet(fallback = acceptAll) {
  const calls = [];
  const script = [];
  const fetch = (url, init) =>
    new Promise((resolve, reject) => {
      const req = { url, init, body: JSON.parse(init.body) };
      req.respond = (r) => (r instanceof Error ? reject(r) : resolve(r));
      calls.push(req);
      const h = script.shift() || fallback;
      let r;
      try {
        r = h(req);
      } catch (e) {
        r = e;
      }
      if (r !== "hold") req.respond(r);
    });
  return { fetch, calls, script, ids: (i) => calls[i].body.events.map((e) => e.id) };
}

export function fakeWindow({ online = true, href = "https://lms.example/courses/c1/unit/2" } = {}) {
  const win = new EventTarget();
  win.document = new EventTarget();
  win.document.visibilityState = "visible";
  win.navigator = { onLine: online };
  win.location = { href };
  win.setVisibility = (state) => {
    win.document.visibilityState = state;
    win.document.dispatchEvent(new Event("visibilitychange"));
  };
  return win;
}

/** A Logger wired to fakes; options override the injected ones. */
export function setup(options = {}, { win = fakeWindow(), storage = new MemoryStorage(), net = fakeNet() } = {}) {
  const clock = fakeClock();
  const beacons = [];
  const logger = createLogger(win, {
    now: clock.now,
    setTimeout: clock.setTimeout,
    clearTimeout: clock.clearTimeout,
    fetch: net.fetch,
    storage,
    random: () => 0.5,
    sendBeacon: (url, body) => {
      beacons.push({ url, body: JSON.parse(body) });
      return true;
    },
    ...options,
  });
  return { logger, clock, storage, net, win, beacons };
}

/** Settled state of a promise: ["fulfilled", value] | ["rejected", reason] | ["pending"]. */
export async function state(p) {
  const mark = {};
  const r = await Promise.race([p.then((v) => ["fulfilled", v], (e) => ["rejected", e]), settle().then(() => mark)]);
  return r === mark ? ["pending"] : r;
}
