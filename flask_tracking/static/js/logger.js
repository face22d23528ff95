/*! flask-tracking Logger | BSD-3-Clause | docs/logger.md */
/*
 * The browser Logger of flask-tracking: Open edX-style learning events kept
 * in a durable localStorage queue, sent in batches to the tracking endpoint
 * and removed from the queue only once the server has answered for them.
 * User documentation: docs/logger.md. Types: logger.d.ts.
 *
 * ONE FILE, THREE WAYS TO LOAD IT (there is no build step; this is what ships):
 *
 *  - Classic script, as the server writes it:
 *      <script src="/activity/logger.js" data-endpoint="/activity/events"></script>
 *    The file has no import/export syntax, so a classic script parses it. It
 *    defines window.Logger (default URL from the tag's data-endpoint) and edX's
 *    alias window.log_event(eventType, data).
 *  - ES module: `import Logger, { createLogger } from ".../logger.mjs"`. That
 *    wrapper does `import "./logger.js"`, which runs this file as a module,
 *    in browsers and in node alike (package.json says "type": "module"): it
 *    is strict code and needs no module syntax. It leaves its factory on
 *    globalThis.FlaskTrackingLogger, which the wrapper re-exports along with
 *    globalThis.Logger. A page loading it both ways still has ONE Logger: an
 *    existing window.Logger is kept.
 *  - CommonJS hosts (a `module` object, e.g. bundlers): module.exports is
 *    { createLogger }.
 *
 * Only a page (a global with a document) gets the ready-made window.Logger.
 * Tests and other hosts call createLogger(windowLike, options) and inject the
 * clock, timers, network and storage through the options.
 *
 * The code is written for size: the budget is 3 KiB minified + gzipped
 * (npm run size). Internals use short names; comments say what they are.
 */
(G => {
  'use strict';

  var noop = () => {};
  // The promise, marked handled: callers that ignore what log()/flush()
  // return get no "unhandled rejection" noise; callers that use it still can.
  var quiet = p => (p.catch(noop), p);
  var enc = encodeURIComponent;
  // Speeds as edX writes them: "1.0", "0.75", "1.50", "2.0".
  var fmt = s => s.toFixed(s % 1 ? 2 : 1);
  var err = (m, x) => Object.assign(Error(m), { errors: x });

  /**
   * Creates a Logger bound to a window-like object.
   * @param {object} [W] window-like: document, navigator, location,
   *   localStorage, fetch, crypto, addEventListener (all optional).
   * @param {object} [opts] the options of Logger.configure().
   * @returns {object} the Logger API (see logger.d.ts).
   */
  function createLogger(W, opts) {
    W = W || {};
    var D = W.document;
    var N = W.navigator || {};
    var cr = W.crypto || G.crypto;
    var C = {
      url: '/activity/events',
      batchSize: 20,
      maxWaitMs: 2e3,
      maxBatchBytes: 49152,
      maxQueue: 1e3,
      storageKey: 'ft',
      now: () => Date.now(),
      fetch: (u, i) => W.fetch(u, i),
      sendBeacon: (u, b) => N.sendBeacon(u, b),
      random: Math.random,
      setTimeout: (f, t) => setTimeout(f, t),
      clearTimeout: h => clearTimeout(h),
      uuid: () => cr && cr.randomUUID ? cr.randomUUID() :
        'xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx'.replace(/[xy]/g, c => {
          var r = C.random() * 16 | 0;
          return (c < 'y' ? r : r & 3 | 8).toString(16);
        })
    };
    try { C.storage = W.localStorage; } catch (e) { /* storage blocked: memory only */ }
    Object.assign(C, opts);

    // Injected functions are called detached, so window.fetch/setTimeout given
    // as options work (called as methods of C they would throw).
    var T = (f, t) => (0, C.setTimeout)(f, t);
    var tab = C.uuid();
    var seq = 0;
    var q = [];        // the queue: events exactly as they go on the wire
    var P = {};        // event id -> [resolve, reject] of its log() promise
    var S = { sent: 0, retried: 0, dropped: 0 };
    var fl = [];       // pending flush() promises: [resolve, reject]
    var ls = [];       // listeners: [type, element, callback, error reported]
    var books = {};
    // busy: a request is in flight; timer: batch wait; wait: retry backoff;
    // lim: batch size after a 413; hid: page_close sent for this hide.
    var busy, timer, wait, tries = 0, lim = 0, hid = 0, shown = C.now();

    var key = (k, id) => C.storageKey + ':' + k + ':' + (id || tab);
    var body = b => JSON.stringify({ sent_at: C.now(), events: b });

    // Settles the log() promise of e, an error x means e is dropped. Returns
    // undefined, so that q.filter(e => ... || settle(e)) removes e.
    var settle = (e, x) => {
      var p = P[e.id];
      delete P[e.id];
      x ? S.dropped++ : S.sent++;
      p && p[x ? 1 : 0](x || e);
    };

    // Writes the queue to storage (on every change); drops the oldest events
    // beyond maxQueue, and while the storage quota is exceeded.
    var save = () => {
      while (q.length > C.maxQueue) settle(q.shift(), Error('queue full'));
      for (;;) {
        try {
          return C.storage && C.storage.setItem(key('q'), JSON.stringify(q));
        } catch (e) {
          if (!/quota/i.test(e.name) || !q.length) return;
          settle(q.shift(), Error('storage full'));
        }
      }
    };

    // Heartbeat: writes ours, adopts the queues of tabs whose heartbeat is
    // older than 10 s (closed before their queue was sent), rewrites ours.
    var adopt = () => {
      var s = C.storage, now = C.now(), p = C.storageKey + ':q:', ks = [], i, v, have = {};
      try {
        s.setItem(key('hb'), now);
        for (i = 0; i < s.length; i++) ks.push(s.key(i));
        q.forEach(e => { have[e.id] = 1; });
        ks.forEach(k => {
          var id = k.slice(p.length);
          if (!k.indexOf(p) && id != tab && !(now - s.getItem(key('hb', id)) < 1e4)) {
            v = s.getItem(k);
            s.removeItem(k);
            s.removeItem(key('hb', id));
            try {
              q = JSON.parse(v).filter(e => !have[e.id] && (have[e.id] = 1)).concat(q);
            } catch (e) { /* corrupt: nothing to adopt */ }
          }
        });
      } catch (e) { /* no storage */ }
      save();
      kick();
    };

    // The batch starting at q[i]: at most batchSize events (lim after a 413)
    // and maxBatchBytes bytes (but at least one event). b.f: full, send now.
    var take = i => {
      var b = [], n = 40, m = lim || C.batchSize, s;
      for (; i < q.length && b.length < m; i++) {
        s = new Blob([JSON.stringify(q[i])]).size + 1;
        if (b.length && n + s > C.maxBatchBytes) break;
        n += s;
        b.push(q[i]);
      }
      b.f = i < q.length || b.length >= m;
      return b;
    };

    // A string body: fetch sends it as text/plain;charset=UTF-8 (no preflight).
    var post = (b, k) => (0, C.fetch)(C.url, { method: 'POST', body: body(b), keepalive: k });

    var flushers = x => fl.splice(0).forEach(f => x ? f[1](x) : f[0]());

    // Sends the next batch when it is due, one request at a time; settles
    // flush() promises when the queue is empty or cannot be sent now.
    var kick = force => {
      if (!q.length) return flushers(lim = 0);
      if (busy) return;
      if (wait || N.onLine === false) return flushers(Error('cannot send now'));
      var b = take(0);
      if (force || fl.length || b.f) send(b);
      else timer = timer || T(() => { timer = 0; kick(1); }, C.maxWaitMs);
    };

    var send = b => {
      var next = f => { busy = 0; kick(f); };
      // The server answered for every event of b: remove and settle them,
      // x(e) gives the error of a rejected event.
      var fin = x => {
        tries = 0;
        q = q.filter(e => b.indexOf(e) < 0 || settle(e, x(e)));
        save();
        next(lim); // after a 413, the rest of the split batch goes at once
      };
      // Exponential backoff with jitter (1 s base, 60 s cap) or Retry-After.
      var retry = r => {
        var d = 1e3 * (r && r.headers && r.headers.get('Retry-After') || NaN);
        S.retried += b.length;
        if (!(d >= 0)) d = Math.min(6e4, 1e3 * 2 ** tries) * (0.5 + C.random() / 2);
        tries++;
        wait = T(() => { wait = 0; kick(1); }, d);
        next();
      };
      busy = 1;
      new Promise(y => y(post(b))).then(r => {
        var s = r.status;
        return s == 200 ? r.json().then(j => {
          var m = {};
          (j.failed || []).forEach(f => { m[f.id] = err('rejected', f.errors); });
          fin(e => m[e.id]);
        }) : s == 413 ? (b[1] ? next(1, lim = b.length >> 1) : fin(() => Error('too large'))) :
          s == 400 ? r.json().then(j => fin(() => err('bad batch', j))) :
          retry(r);
      }).catch(retry);
    };

    /**
     * Logs an event: queued durably at once, sent in a batch.
     * @param {string} type the event type, e.g. "play_video".
     * @param {*} [data] the payload: a JSON-able object or string.
     * @param {Element} [el] the element concerned (for listeners only).
     * @param {{flush?: boolean}} [o] flush: send without waiting for the batch.
     * @returns {Promise<object>} resolves with the event once the server has
     *   stored it; rejects when it is dropped. Never throws.
     */
    var log = (type, data, el, o) => {
      try {
        if (!type || typeof type != 'string') throw TypeError('bad eventType');
        var e = {
          id: C.uuid(),
          event_type: type,
          event: data === undefined ? {} : JSON.parse(JSON.stringify(data)),
          page: W.location ? W.location.href : '',
          time: C.now(),
          seq: ++seq
        };
        ls.forEach(l => {
          if (l[0] == type && (l[1] == null || l[1] === el)) {
            try { l[2](type, data, el); } catch (x) { l[3] || console.error(l[3] = x); }
          }
        });
        var p = new Promise((y, n) => { P[e.id] = [y, n]; });
        q.push(e);
        save();
        kick(o && o.flush);
        return quiet(p);
      } catch (x) {
        return quiet(Promise.reject(x));
      }
    };

    // Page hidden or left: page_close, then the whole queue by beacon (the
    // events stay queued: the beacon gets no answer). Once per hide.
    var hide = () => {
      if (hid) return;
      hid = 1;
      log('page_close', { visible_ms: C.now() - shown });
      for (var i = 0, b, ok; i < q.length; i += b.length) {
        b = take(i);
        try { ok = C.sendBeacon(C.url, body(b)); } catch (e) { ok = 0; }
        ok || post(b, true).catch(noop);
      }
    };
    var show = () => {
      if (hid) { hid = 0; shown = C.now(); adopt(); } // adopt: heartbeat, then kick
    };

    var sub = (t, n, f) => t && t.addEventListener && t.addEventListener(n, f);
    sub(D, 'visibilitychange', () => D.visibilityState == 'hidden' ? hide() : show());
    sub(W, 'pagehide', () => {
      hide();
      try { C.storage.setItem(key('hb'), 0); } catch (e) { /* no storage */ }
    });
    sub(W, 'pageshow', show);
    sub(W, 'online', () => { (0, C.clearTimeout)(wait); wait = 0; kick(1); });

    var beat = () => { adopt(); T(beat, 5e3); };
    beat();

    // Answers as a query string: from an object, FormData, URLSearchParams,
    // an iterable of [name, value], or a string (kept as it is).
    var qs = a => typeof a == 'string' ? a :
      (a && a[Symbol.iterator] ? Array.from(a) : Object.entries(a || {}))
        .map(kv => [].concat(kv[1]).map(v => enc(kv[0]) + '=' + enc(v == null ? '' : v)).join('&'))
        .filter(String).join('&');

    /**
     * Instruments an HTML5 <video> element or a YouTube IFrame API player.
     * @returns {{destroy(): void}}
     */
    var video = (v, o) => {
      o = o || {};
      var yt = !!v.getPlayerState, H = [], run = 0, ps, last, at = C.now();
      var cur = () => +(yt ? v.getCurrentTime() : v.currentTime) || 0;
      var rate = () => +(yt ? v.getPlaybackRate() : v.playbackRate) || 1;
      // Logs a video event; its position is the last known one from then on.
      var E = (t, x) => {
        var d = yt ? v.getDuration() : v.duration;
        return log(t, Object.assign({
          id: o.id, code: o.code, currentTime: last = cur(), speed: fmt(rate()),
          duration: d > 0 && d < 1 / 0 ? d : undefined
        }, x));
      };
      var spd = rate();
      last = cur();
      // run: a play run is going on (play_video logged, no pause/end since).
      var play = () => { run || E('play_video'); run = 1; };
      var pause = () => { run && !v.ended && E('pause_video'); run = 0; };
      var end = () => { E('stop_video'); run = 0; };
      var seek = (a, b) => E('seek_video', { old_time: a, new_time: b, type: 'onSlideSeek' });
      var speed = n => {
        n != spd && E('speed_change_video', { current_time: cur(), old_speed: fmt(spd), new_speed: fmt(n) });
        spd = n;
      };
      var add = (n, f) => { v.addEventListener(n, f); H.push([n, f]); };
      if (yt) {
        // The IFrame API has no seek event: at each state change, a position
        // more than 1 s off where playback would be is a seek.
        add('onStateChange', e => {
          var c = cur(), x = last + (ps == 1 ? (C.now() - at) / 1e3 * spd : 0), f = [end, play, pause][e.data];
          Math.abs(c - x) > 1 && seek(x, c);
          last = c;
          at = C.now();
          ps = e.data;
          f && f();
        });
        add('onPlaybackRateChange', e => speed(e.data));
        E('load_video');
      } else {
        // One load_video per media load: the metadata may have arrived while its
        // loadedmetadata event still waits to be dispatched ('emptied': a new load).
        var loaded = 0, load = () => loaded++ || E('load_video');
        add('loadedmetadata', load);
        add('emptied', () => loaded = 0);
        add('playing', play);
        add('pause', pause);
        add('ended', end);
        add('timeupdate', () => v.seeking || (last = cur()));
        add('seeking', () => seek(last, last = cur()));
        add('ratechange', () => speed(rate()));
        v.readyState > 0 && load();
      }
      return { destroy: () => H.forEach(h => v.removeEventListener(h[0], h[1])) };
    };

    /**
     * Textbook navigation of one chapter (one shared object per chapter).
     * @returns {{goto(o: number, n: number), next(n?: number), prev(n?: number), pdfjs(bus)}}
     */
    var book = (ch, pg) => {
      var cur = pg || 1;
      // One event per page change: a "change" to the current page is not
      // logged, so the PDF.js adapter and the helpers never log one twice.
      var E = (t, o, n) => n == cur ? Promise.resolve(null) :
        (cur = n, log('book', { type: t + 'page', old: o, new: n, chapter: ch }));
      return books[ch] = books[ch] || {
        goto: (o, n) => E('goto', o, n),
        next: n => E('next', cur, n == null ? cur + 1 : n),
        prev: n => E('prev', cur, n == null ? cur - 1 : n),
        pdfjs: bus => {
          var h = e => {
            var n = e.pageNumber, o = e.previous == null ? cur : e.previous;
            E(n - o == 1 ? 'next' : n - o == -1 ? 'prev' : 'goto', o, n);
          };
          bus.on('pagechanging', h);
          return { destroy: () => bus.off('pagechanging', h) };
        }
      };
    };
    book.pdfjs = (bus, ch) => book(ch).pdfjs(bus);

    var L = {
      log: log,
      /** Calls f(type, data, element) on each log(type) (element null: any). */
      listen: (t, el, f) => { ls.push([t, el, f]); },
      /**
       * Sends the whole queue now. Resolves when the queue is empty; rejects
       * when it cannot be emptied now (offline, backing off after a failure).
       */
      flush: () => quiet(new Promise((y, n) => { fl.push([y, n]); kick(1); })),
      /** Changes options (see the defaults above); returns the Logger. */
      configure: o => (Object.assign(C, o), adopt(), L),
      /** {queued, sent, retried, dropped} counts of events. */
      stats: () => Object.assign({ queued: q.length }, S),
      video: video,
      /** seq_goto / seq_next / seq_prev of a sequence, {old, new, id}. */
      sequence: id => {
        var s = {};
        ['goto', 'next', 'prev'].forEach(k => {
          s[k] = (o, n) => log('seq_' + k, { old: o, new: n, id: id });
        });
        return s;
      },
      book: book,
      pdfjs: book.pdfjs,
      /** problem_check / _show / _reset / _save of one problem. */
      problem: id => {
        var f = t => a => log('problem_' + t, qs(a));
        return { check: f('check'), show: () => log('problem_show', { problem: id }), reset: f('reset'), save: f('save') };
      }
    };
    return L;
  }

  G.FlaskTrackingLogger = createLogger;
  if (typeof module == 'object' && module.exports) module.exports = { createLogger: createLogger };
  var d = G.document;
  if (d && !G.Logger) {
    var s = d.currentScript, L = G.Logger = createLogger(G, s && s.dataset.endpoint && { url: s.dataset.endpoint });
    G.log_event = (t, x) => L.log(t, x);
  }
})(typeof window != 'undefined' ? window : globalThis);
