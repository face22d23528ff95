/*! flask-tracking Logger | BSD-3-Clause | docs/logger.md */
/*
 * The browser Logger of flask-tracking: Open edX-style learning events kept
 * in a durable localStorage queue, sent in batches to the tracking endpoint
 * and removed from the queue only once the server has answered for them.
 * User documentation: docs/logger.md. Types: logger.d.ts.
 *
 * THIS FILE IS THE ONE SOURCE. scripts/build-logger.mjs derives from it:
 *  - logger.mjs, the ES module: the body of the function below, with ES
 *    exports in place of its "Exports" section;
 *  - logger.min.js and logger.min.js.map: this file minified by terser.
 * `npm test` fails when they are not current; `npm run build` remakes them.
 *
 * Loaded by <script src=".../logger.js" data-endpoint="...">, it defines
 * window.Logger (sending to the tag's data-endpoint) and edX's alias
 * window.log_event(eventType, data). Under require() it exports
 * { createLogger }. A page that loads both this script and logger.mjs still
 * has ONE Logger: an existing window.Logger is kept.
 *
 * Only a page (a global with a document) gets the ready-made window.Logger.
 * Tests and other hosts call createLogger(windowLike, options) and inject the
 * clock, timers, network and storage through the options.
 *
 * Size budget: logger.min.js at most 3 KiB gzipped (npm run size). The
 * minifier shortens local names but not property names, so internal objects
 * are few. Bindings are declared with `let` (terser keeps `const` as it is,
 * two bytes more each). The code is strict-mode clean (logger.mjs, a module,
 * is strict, and it is what the unit tests run) but says no 'use strict':
 * ten bytes of the budget.
 */
(root => {
  // --- Small helpers ---------------------------------------------------------

  // The promise, marked handled: callers that ignore what log()/flush()
  // return get no "unhandled rejection" noise; callers that use it still can.
  let quiet = promise => (promise.catch(() => {}), promise);
  let encode = encodeURIComponent;
  // Speeds as edX writes them: "1.0", "0.75", "1.50", "2.0".
  let formatSpeed = speed => speed.toFixed(speed % 1 ? 2 : 1);
  let errorWith = (message, errors) => Object.assign(Error(message), { errors: errors });

  /**
   * Creates a Logger bound to a window-like object.
   * @param {object} [win] window-like: document, navigator, location,
   *   localStorage, fetch, crypto, addEventListener (all optional).
   * @param {object} [options] the options of Logger.configure().
   * @returns {object} the Logger API (see logger.d.ts).
   */
  function createLogger(win, options) {
    win = win || {};
    let doc = win.document;
    let nav = win.navigator || {};
    let cryptoApi = win.crypto || root.crypto;

    // --- Options, with their defaults (Logger.configure changes them) ----------

    let config = {
      url: '/activity/events',
      batchSize: 20,
      maxWaitMs: 2e3,
      maxBatchBytes: 49152,
      maxQueue: 1e3,
      storageKey: 'ft',
      now: Date.now,
      fetch: (url, init) => win.fetch(url, init),
      sendBeacon: (url, body) => nav.sendBeacon(url, body),
      random: Math.random,
      setTimeout: setTimeout,
      clearTimeout: clearTimeout,
      // crypto.randomUUID where there is one, else a random version 4 UUID:
      // x is any hex digit, y one of 8, 9, a, b.
      uuid: () => cryptoApi?.randomUUID ? cryptoApi.randomUUID() :
        'xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx'.replace(/[xy]/g, digit =>
          ((digit < 'y' ? 0 : 8) | config.random() * (digit < 'y' ? 16 : 4)).toString(16))
    };
    try { config.storage = win.localStorage; } catch { /* storage blocked: memory only */ }
    Object.assign(config, options);

    // --- State -----------------------------------------------------------------

    let tabId = config.uuid();
    let queue = [];                     // the events exactly as they go on the wire
    let promises = {};                  // event id -> [resolve, reject] of its log() promise
    let counts = { sent: 0, retried: 0, dropped: 0 };
    let flushWaiters = [];              // pending flush() promises: [resolve, reject]
    let listeners = [];                 // listen(): [type, element, callback, error reported]
    let ended = new AbortController();  // its abort() removes the page listeners
    let books = {};                     // book(chapter) helpers, one per chapter
    // sending: a request is in flight; batchTimer: the wait of a batch that is
    // not full; retryTimer: the backoff after a failed request; batchLimit:
    // the batch size after a 413; pageHidden: page_close sent for this hide.
    let sending, batchTimer, retryTimer, heartbeatTimer, stopped;
    let lastSeq = 0, failures = 0, batchLimit = 0, pageHidden = 0, shownAt = config.now();

    // --- Timers ----------------------------------------------------------------

    // Injected functions are called detached, so window.fetch/setTimeout given
    // as options work (called as methods of config they would throw). A
    // stopped Logger starts no timer.
    let later = (callback, ms) => stopped ? 0 : (0, config.setTimeout)(callback, ms);
    let cancel = handle => (0, config.clearTimeout)(handle);

    // --- The durable queue -----------------------------------------------------

    // Storage keys: <storageKey>:q:<tab> holds a tab's queue, <storageKey>:hb:<tab>
    // the time of its last heartbeat.
    let keyOf = (kind, tab) => config.storageKey + ':' + kind + ':' + (tab || tabId);

    // Settles the log() promise of an event; an error means it was dropped.
    // Returns undefined, so that queue.filter(e => ... || settle(e)) removes e.
    let settle = (event, error) => {
      let promise = promises[event.id];
      delete promises[event.id];
      error ? counts.dropped++ : counts.sent++;
      promise?.[error ? 1 : 0](error || event);
    };

    // Writes the queue to storage (on every change); drops the oldest events
    // beyond maxQueue, and while the storage quota is exceeded.
    let save = () => {
      while (queue.length > config.maxQueue) settle(queue.shift(), Error('queue full'));
      for (;;) {
        try {
          return config.storage?.setItem(keyOf('q'), JSON.stringify(queue));
        } catch (error) {
          if (!/quota/i.test(error.name) || !queue.length) return;
          settle(queue.shift(), Error('storage full'));
        }
      }
    };

    // Heartbeat: writes ours, adopts the queues of tabs whose heartbeat is
    // older than 10 s (closed before their queue was sent), rewrites ours.
    let adopt = () => {
      let storage = config.storage, now = config.now(), prefix = config.storageKey + ':q:';
      let keys = [], known = {};
      try {
        storage.setItem(keyOf('hb'), now);
        for (let i = 0; i < storage.length; i++) keys.push(storage.key(i));
        queue.forEach(event => { known[event.id] = 1; });
        keys.forEach(key => {
          let tab = key.slice(prefix.length);
          if (!key.indexOf(prefix) && tab != tabId && !(now - storage.getItem(keyOf('hb', tab)) < 1e4)) {
            let saved = storage.getItem(key);
            storage.removeItem(key);
            storage.removeItem(keyOf('hb', tab));
            try {
              queue = JSON.parse(saved).filter(event => !known[event.id] && (known[event.id] = 1)).concat(queue);
            } catch { /* corrupt: nothing to adopt */ }
          }
        });
      } catch { /* no storage */ }
      save();
      kick();
    };

    // --- Batches ---------------------------------------------------------------

    // The batch starting at queue[start]: at most batchSize events (batchLimit
    // after a 413) and maxBatchBytes bytes, but at least one event.
    // batch.full: it cannot grow, so it goes now.
    let takeBatch = start => {
      let batch = [], limit = batchLimit || config.batchSize;
      let bytes = 40, index = start, size;
      for (; index < queue.length && batch.length < limit; index++) {
        size = new Blob([JSON.stringify(queue[index])]).size + 1;
        if (batch.length && bytes + size > config.maxBatchBytes) break;
        bytes += size;
        batch.push(queue[index]);
      }
      batch.full = index < queue.length || batch.length >= limit;
      return batch;
    };

    let bodyOf = batch => JSON.stringify({ sent_at: config.now(), events: batch });

    // A string body: fetch sends it as text/plain;charset=UTF-8 (no preflight).
    let post = (batch, keepalive) =>
      (0, config.fetch)(config.url, { method: 'POST', body: bodyOf(batch), keepalive: keepalive });

    // --- Sending ---------------------------------------------------------------

    let settleFlushes = error =>
      flushWaiters.splice(0).forEach(waiter => waiter[error ? 1 : 0](error));

    // Sends the next batch when it is due, one request at a time; settles
    // flush() promises when the queue is empty or cannot be sent now.
    let kick = force => {
      if (!queue.length) { batchLimit = 0; return settleFlushes(); } // empty: a 413's limit ends
      if (sending) return;
      if (stopped || retryTimer || nav.onLine === false) return settleFlushes(Error('cannot send now'));
      let batch = takeBatch(0);
      if (force || flushWaiters.length || batch.full) send(batch);
      else batchTimer = batchTimer || later(() => { batchTimer = 0; kick(1); }, config.maxWaitMs);
    };

    // The backoff is over (its timer, or the browser is back online).
    let retryNow = () => { cancel(retryTimer); retryTimer = 0; kick(1); };

    let send = batch => {
      let next = force => { sending = 0; kick(force); };
      // The server answered for every event of the batch: remove and settle
      // them; errorOf(event) is the error of a rejected event.
      let finish = errorOf => {
        failures = 0;
        queue = queue.filter(event => batch.indexOf(event) < 0 || settle(event, errorOf(event)));
        save();
        next(batchLimit); // after a 413, the rest of the split batch goes at once
      };
      // Exponential backoff with jitter (1 s base, 60 s cap), or Retry-After.
      let retry = response => {
        let delay = 1e3 * (response?.headers?.get('Retry-After') || NaN);
        counts.retried += batch.length;
        if (!(delay >= 0)) delay = Math.min(6e4, 1e3 * 2 ** failures) * (0.5 + config.random() / 2);
        failures++;
        retryTimer = later(retryNow, delay);
        next();
      };
      sending = 1;
      new Promise(resolve => resolve(post(batch))).then(response => {
        let status = response.status;
        return status == 200 ? response.json().then(answer => {
          let errors = {};
          (answer.failed || []).forEach(failed => { errors[failed.id] = errorWith('rejected', failed.errors); });
          finish(event => errors[event.id]);
        }) :
          status == 413 ? (batch[1] ? next(1, batchLimit = batch.length >> 1) : finish(() => Error('too large'))) :
          status == 400 ? response.json().then(answer => finish(() => errorWith('bad batch', answer))) :
          retry(response);
      }).catch(retry);
    };

    // --- log() -----------------------------------------------------------------

    /**
     * Logs an event: queued durably at once, sent in a batch.
     * @param {string} type the event type, e.g. "play_video".
     * @param {*} [data] the payload: a JSON-able object or string.
     * @param {Element} [element] the element concerned (for listeners only).
     * @param {{flush?: boolean}} [logOptions] flush: send without waiting for the batch.
     * @returns {Promise<object>} resolves with the event once the server has
     *   stored it; rejects when it is dropped. Never throws.
     */
    let log = (type, data, element, logOptions) => {
      try {
        if (!type || typeof type != 'string') throw TypeError('bad eventType');
        let event = {
          id: config.uuid(),
          event_type: type,
          event: data === undefined ? {} : JSON.parse(JSON.stringify(data)),
          page: win.location?.href ?? '',
          time: config.now(),
          seq: ++lastSeq
        };
        listeners.forEach(listener => {
          if (listener[0] == type && (listener[1] == null || listener[1] === element)) {
            try {
              listener[2](type, data, element);
            } catch (error) {
              listener[3] || console.error(listener[3] = error);
            }
          }
        });
        let promise = new Promise((...settlers) => { promises[event.id] = settlers; });
        queue.push(event);
        save();
        kick(logOptions?.flush);
        return quiet(promise);
      } catch (error) {
        return quiet(Promise.reject(error));
      }
    };

    // --- The page's life: hidden, shown, left ----------------------------------

    // Page hidden or left: page_close, then the whole queue by beacon (the
    // events stay queued: the beacon gets no answer). Once per hide.
    let hide = () => {
      if (pageHidden) return;
      pageHidden = 1;
      log('page_close', { visible_ms: config.now() - shownAt });
      for (let index = 0, batch, beaconed; index < queue.length; index += batch.length) {
        batch = takeBatch(index);
        try { beaconed = config.sendBeacon(config.url, bodyOf(batch)); } catch { beaconed = 0; }
        beaconed || quiet(post(batch, true));
      }
    };
    let show = () => {
      if (pageHidden) { pageHidden = 0; shownAt = config.now(); adopt(); } // adopt: heartbeat, then kick
    };
    // A heartbeat of 0: the next Logger on this storage adopts our queue at once.
    let release = () => {
      try { config.storage.setItem(keyOf('hb'), 0); } catch { /* no storage */ }
    };

    let onPage = (target, name, handler) =>
      target?.addEventListener?.(name, handler, { signal: ended.signal });
    onPage(doc, 'visibilitychange', () => doc.visibilityState == 'hidden' ? hide() : show());
    onPage(win, 'pagehide', () => { hide(); release(); });
    onPage(win, 'pageshow', show);
    onPage(win, 'online', retryNow);

    let beat = () => { adopt(); heartbeatTimer = later(beat, 5e3); };
    beat();

    /**
     * Ends this Logger: clears its timers and removes its page listeners.
     * It sends nothing more (a request in flight still settles its events);
     * the events still queued stay in storage, where the next Logger on it
     * adopts them at its first heartbeat. flush() then rejects unless the
     * queue is empty.
     */
    let stop = () => {
      stopped = 1;
      [batchTimer, retryTimer, heartbeatTimer].forEach(cancel);
      ended.abort();
      release();
    };

    // --- Instrumentations: video, sequence, book, problem ----------------------

    // Answers as a query string: from an object, FormData, URLSearchParams,
    // an iterable of [name, value], or a string (kept as it is).
    let queryString = answers => typeof answers == 'string' ? answers :
      (answers?.[Symbol.iterator] ? [...answers] : Object.entries(answers || {}))
        .map(pair => [].concat(pair[1]).map(value => encode(pair[0]) + '=' + encode(value == null ? '' : value)).join('&'))
        .filter(String).join('&');

    /**
     * Instruments an HTML5 <video> element or a YouTube IFrame API player.
     * @returns {{destroy(): void}}
     */
    let video = (player, videoOptions) => {
      videoOptions = videoOptions || {};
      let youtube = !!player.getPlayerState, handlers = [];
      // playing: a play run is going on (play_video logged, no pause/end since).
      let playing = 0, playerState, position, positionAt = config.now();
      let currentTime = () => +(youtube ? player.getCurrentTime() : player.currentTime) || 0;
      let playbackRate = () => +(youtube ? player.getPlaybackRate() : player.playbackRate) || 1;
      // Logs a video event; its position is the last known one from then on.
      let logVideo = (type, extra) => {
        let duration = youtube ? player.getDuration() : player.duration;
        return log(type, {
          id: videoOptions.id, code: videoOptions.code, currentTime: position = currentTime(),
          speed: formatSpeed(playbackRate()),
          duration: duration > 0 && duration < 1 / 0 ? duration : undefined,
          ...extra
        });
      };
      let speed = playbackRate();
      position = currentTime();
      let play = () => { playing || logVideo('play_video'); playing = 1; };
      let pause = () => { playing && !player.ended && logVideo('pause_video'); playing = 0; };
      let end = () => { logVideo('stop_video'); playing = 0; };
      let seek = (from, to) => logVideo('seek_video', { old_time: from, new_time: to, type: 'onSlideSeek' });
      let changeSpeed = newSpeed => {
        newSpeed != speed && logVideo('speed_change_video',
          { current_time: currentTime(), old_speed: formatSpeed(speed), new_speed: formatSpeed(newSpeed) });
        speed = newSpeed;
      };
      let on = (name, handler) => { player.addEventListener(name, handler); handlers.push([name, handler]); };
      if (youtube) {
        // The IFrame API has no seek event: at each state change, a position
        // more than 1 s off where playback would be is a seek.
        on('onStateChange', change => {
          let now = currentTime();
          let expected = position + (playerState == 1 ? (config.now() - positionAt) / 1e3 * speed : 0);
          let handle = [end, play, pause][change.data];
          Math.abs(now - expected) > 1 && seek(expected, now);
          position = now;
          positionAt = config.now();
          playerState = change.data;
          handle && handle();
        });
        on('onPlaybackRateChange', change => changeSpeed(change.data));
        logVideo('load_video');
      } else {
        // One load_video per media load: the metadata may have arrived while its
        // loadedmetadata event still waits to be dispatched ('emptied': a new load).
        let loaded = 0;
        let load = () => loaded++ || logVideo('load_video');
        on('loadedmetadata', load);
        on('emptied', () => loaded = 0);
        on('playing', play);
        on('pause', pause);
        on('ended', end);
        on('timeupdate', () => player.seeking || (position = currentTime()));
        on('seeking', () => seek(position, position = currentTime()));
        on('ratechange', () => changeSpeed(playbackRate()));
        player.readyState > 0 && load();
      }
      return { destroy: () => handlers.forEach(handler => player.removeEventListener(handler[0], handler[1])) };
    };

    /**
     * Textbook navigation of one chapter (one shared object per chapter).
     * @returns {{goto(old: number, new: number), next(n?: number), prev(n?: number), pdfjs(bus)}}
     */
    let book = (chapter, firstPage) => {
      let page = firstPage || 1;
      // One event per page change: a "change" to the current page is not
      // logged, so the PDF.js adapter and the helpers never log one twice.
      let turn = (kind, from, to) => to == page ? Promise.resolve(null) :
        (page = to, log('book', { type: kind + 'page', old: from, new: to, chapter: chapter }));
      return books[chapter] = books[chapter] || {
        goto: (from, to) => turn('goto', from, to),
        next: to => turn('next', page, to == null ? page + 1 : to),
        prev: to => turn('prev', page, to == null ? page - 1 : to),
        pdfjs: eventBus => {
          let onPageChanging = change => {
            let to = change.pageNumber, from = change.previous == null ? page : change.previous;
            turn(to - from == 1 ? 'next' : to - from == -1 ? 'prev' : 'goto', from, to);
          };
          eventBus.on('pagechanging', onPageChanging);
          return { destroy: () => eventBus.off('pagechanging', onPageChanging) };
        }
      };
    };
    book.pdfjs = (eventBus, chapter) => book(chapter).pdfjs(eventBus);

    // --- The Logger's API ------------------------------------------------------

    let logger = {
      log: log,
      /** Calls callback(type, data, element) on each log(type) (element null: any). */
      listen: (type, element, callback) => { listeners.push([type, element, callback]); },
      /**
       * Sends the whole queue now. Resolves when the queue is empty; rejects
       * when it cannot be emptied now (offline, backing off after a failure).
       */
      flush: () => quiet(new Promise((...waiter) => { flushWaiters.push(waiter); kick(1); })),
      /** Changes options (see the defaults above); returns the Logger. */
      configure: changes => (Object.assign(config, changes), adopt(), logger),
      /** {queued, sent, retried, dropped} counts of events. */
      stats: () => ({ queued: queue.length, ...counts }),
      stop: stop,
      video: video,
      /** seq_goto / seq_next / seq_prev of a sequence, {old, new, id}. */
      sequence: id => {
        let helpers = {};
        ['goto', 'next', 'prev'].forEach(kind => {
          helpers[kind] = (from, to) => log('seq_' + kind, { old: from, new: to, id: id });
        });
        return helpers;
      },
      book: book,
      pdfjs: book.pdfjs,
      /** problem_check / _show / _reset / _save of one problem. */
      problem: id => {
        let answersLogger = type => answers => log('problem_' + type, queryString(answers));
        return {
          check: answersLogger('check'),
          show: () => log('problem_show', { problem: id }),
          reset: answersLogger('reset'),
          save: answersLogger('save')
        };
      }
    };
    return logger;
  }

  // --- The page's Logger: window.Logger and edX's window.log_event -----------

  // Made once per page, by whichever of logger.js and logger.mjs runs first,
  // sending to the data-endpoint of the script tag (a module has no tag).
  let pageDocument = root.document;
  if (pageDocument && !root.Logger) {
    let script = pageDocument.currentScript;
    let pageLogger = root.Logger = createLogger(root, script?.dataset.endpoint && { url: script.dataset.endpoint });
    root.log_event = (type, data) => pageLogger.log(type, data);
  }

  // --- Exports ---------------------------------------------------------------
  // (scripts/build-logger.mjs puts ES exports in place of this section.)

  if (typeof module == 'object') module.exports = { createLogger: createLogger };
})(globalThis);
