// Type declarations of the flask-tracking browser Logger (logger.js, logger.mjs, logger.min.js).
// Documentation: docs/logger.md.

/** One event as it is queued, stored in localStorage and sent on the wire. */
export interface LoggedEvent {
  /** UUID v4: the server de-duplicates on it. */
  id: string;
  event_type: string;
  /** The payload: an object, or a string (query strings of problem events). */
  event: unknown;
  /** location.href when the event was logged ("" without a location). */
  page: string;
  /** Client time of log(), epoch milliseconds. */
  time: number;
  /** Per-tab sequence number (1, 2, 3, ... for each page load). */
  seq: number;
}

/** The body POSTed to the batch endpoint (as text/plain;charset=UTF-8). */
export interface Batch {
  /** Client time of the send, epoch milliseconds. */
  sent_at: number;
  events: LoggedEvent[];
}

/** The server's 200 answer to a batch. */
export interface BatchAnswer {
  accepted: number;
  duplicates: number;
  failed: { id: string; errors: Record<string, unknown> }[];
}

/** The Error a dropped event's log() promise rejects with. */
export interface LoggerError extends Error {
  /** The server's errors for this event (failed list, or a 400 body). */
  errors?: unknown;
}

/** A localStorage-like store. */
export interface StorageLike {
  readonly length: number;
  key(index: number): string | null;
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

export interface LoggerOptions {
  /** Batch endpoint. Default: the script tag's data-endpoint, else "/activity/events". */
  url?: string;
  /** Most events per request. Default 20. */
  batchSize?: number;
  /** Longest wait before a batch goes, counted from its first event, ms. Default 2000. */
  maxWaitMs?: number;
  /** Largest request body, bytes (UTF-8). Default 49152 (48 KiB). */
  maxBatchBytes?: number;
  /** Most events kept queued; beyond it the oldest are dropped. Default 1000. */
  maxQueue?: number;
  /** Prefix of the localStorage keys: `<storageKey>:q:<tab>`, `<storageKey>:hb:<tab>`. Default "ft". */
  storageKey?: string;
  /** Clock, epoch ms. Default Date.now. */
  now?(): number;
  /** Network. Default window.fetch. Called detached (no `this`). */
  fetch?(url: string, init: RequestInit): Promise<Response>;
  /** Default navigator.sendBeacon (as a method of navigator). Returns false when refused. */
  sendBeacon?(url: string, body: string): boolean;
  /** Durable store. Default window.localStorage (none: the queue is kept in memory only). */
  storage?: StorageLike | null;
  /** Random number in [0, 1): backoff jitter, and UUIDs without crypto.randomUUID. */
  random?(): number;
  setTimeout?(callback: () => void, ms: number): unknown;
  clearTimeout?(handle: unknown): void;
  /** UUID v4 generator. Default crypto.randomUUID, else one built from random(). */
  uuid?(): string;
}

export interface LogOptions {
  /** Send now, without waiting for the batch to fill or maxWaitMs. */
  flush?: boolean;
}

export interface LoggerStats {
  /** Events in the queue now. */
  queued: number;
  /** Events the server stored (accepted or duplicate). */
  sent: number;
  /** Events in requests that failed and were scheduled again. */
  retried: number;
  /** Events given up: rejected by the server, too large, queue or storage full. */
  dropped: number;
}

export type ListenerCallback = (eventType: string, data: unknown, element: unknown) => void;

/** Something with a destroy() that removes the listeners it added. */
export interface Instrumentation {
  destroy(): void;
}

/** The part of a YouTube IFrame API player (YT.Player) that Logger.video uses. */
export interface YouTubePlayerLike {
  getPlayerState(): number;
  getCurrentTime(): number;
  getPlaybackRate(): number;
  getDuration(): number;
  addEventListener(event: string, listener: (e: { data: number }) => void): void;
  removeEventListener(event: string, listener: (e: { data: number }) => void): void;
}

/** An HTML5 media element, or anything with its events and properties. */
export interface VideoElementLike {
  currentTime: number;
  playbackRate: number;
  duration: number;
  ended?: boolean;
  seeking?: boolean;
  readyState?: number;
  addEventListener(type: string, listener: (e: Event) => void): void;
  removeEventListener(type: string, listener: (e: Event) => void): void;
}

export interface VideoOptions {
  /** The video's id (edX: the module's id). */
  id?: string;
  /** The video's code (edX: the YouTube id, or "html5"). */
  code?: string;
}

export interface SequenceHelpers {
  /** seq_goto {old, new, id}; 1-based unit indexes. */
  goto(oldIndex: number, newIndex: number): Promise<LoggedEvent>;
  /** seq_next {old, new, id}. */
  next(oldIndex: number, newIndex: number): Promise<LoggedEvent>;
  /** seq_prev {old, new, id}. */
  prev(oldIndex: number, newIndex: number): Promise<LoggedEvent>;
}

/**
 * Textbook helpers of one chapter. Each logs ONE `book` event
 * {type: "gotopage"|"nextpage"|"prevpage", old, new, chapter}, and none when
 * the new page is the current one (that change was logged already); such a
 * call returns a promise resolved with null.
 */
export interface BookHelpers {
  goto(oldPage: number, newPage: number): Promise<LoggedEvent | null>;
  /** From the current page to newPage (default: current + 1). */
  next(newPage?: number): Promise<LoggedEvent | null>;
  /** From the current page to newPage (default: current - 1). */
  prev(newPage?: number): Promise<LoggedEvent | null>;
  /** Follows a PDF.js EventBus's `pagechanging` events. */
  pdfjs(eventBus: PdfJsEventBusLike): Instrumentation;
}

export interface PdfJsEventBusLike {
  on(name: "pagechanging", listener: (e: { pageNumber: number; previous?: number }) => void): void;
  off(name: "pagechanging", listener: (e: { pageNumber: number; previous?: number }) => void): void;
}

/** Answers: an object (array values repeat the name), FormData, URLSearchParams, [name, value] pairs, or a ready query string. */
export type Answers =
  | string
  | Record<string, unknown>
  | Iterable<[string, unknown]>;

export interface ProblemHelpers {
  /** problem_check: the answers as a query string. */
  check(answers: Answers): Promise<LoggedEvent>;
  /** problem_show: {problem: problemId}. */
  show(): Promise<LoggedEvent>;
  /** problem_reset: the answers as a query string ("" without answers). */
  reset(answers?: Answers): Promise<LoggedEvent>;
  /** problem_save: the answers as a query string. */
  save(answers: Answers): Promise<LoggedEvent>;
}

export interface BookFunction {
  /** The helpers of a chapter; one shared object per chapter. page: the current page at first (default 1). */
  (chapter: string | number, page?: number): BookHelpers;
  /** Logger.book(chapter).pdfjs(eventBus). */
  pdfjs(eventBus: PdfJsEventBusLike, chapter: string | number): Instrumentation;
}

export interface Logger {
  /**
   * Logs an event (edX: log(event_type, data, element)). It is queued in
   * localStorage at once and sent in a batch. Never throws: a bad eventType
   * or a payload that is not JSON gives a rejected promise.
   * @returns resolves with the event once the server stored it (accepted or
   *   duplicate); rejects with a LoggerError when the event is dropped.
   */
  log(eventType: string, data?: unknown, element?: unknown, options?: LogOptions): Promise<LoggedEvent>;
  /**
   * Calls callback(eventType, data, element) on each log(eventType) whose
   * element is `element` (null: any). A throwing callback is caught and
   * reported once with console.error.
   */
  listen(eventType: string, element: unknown, callback: ListenerCallback): void;
  /**
   * Sends the queue now. Resolves when the queue is empty; rejects when it
   * cannot be emptied now (offline, or backing off after a failed request):
   * the events stay queued and are sent later anyway.
   */
  flush(): Promise<void>;
  /** Changes options; returns the Logger. */
  configure(options: LoggerOptions): Logger;
  stats(): LoggerStats;
  /**
   * Ends this Logger: clears its timers (batch wait, backoff, heartbeat) and
   * removes its page listeners, so a Node process can exit and a single-page
   * app can drop it on a route change. It sends nothing more; a request in
   * flight still settles its events, and the events still queued stay in
   * storage for the next Logger on it. Instrumentations are not ended: call
   * their destroy(). Calling it twice is harmless.
   */
  stop(): void;
  /**
   * Instruments an HTML5 video element or a ready YouTube IFrame API player:
   * load_video, play_video, pause_video, seek_video, speed_change_video, stop_video.
   */
  video(video: VideoElementLike | YouTubePlayerLike, options?: VideoOptions): Instrumentation;
  /** Helpers for seq_goto / seq_next / seq_prev of a sequence. */
  sequence(id: string): SequenceHelpers;
  book: BookFunction;
  /** Same as book.pdfjs. */
  pdfjs(eventBus: PdfJsEventBusLike, chapter: string | number): Instrumentation;
  /** Helpers for problem_check / problem_show / problem_reset / problem_save. */
  problem(problemId: string): ProblemHelpers;
}

/**
 * Creates an independent Logger bound to a window-like object (default: none,
 * memory only unless options say otherwise). Options as in configure().
 */
export declare function createLogger(windowLike?: object, options?: LoggerOptions): Logger;

/** The page's Logger (window.Logger); undefined where there is no document. */
export declare const Logger: Logger | undefined;
export default Logger;

declare global {
  interface Window {
    Logger: Logger;
    /** edX's alias: Logger.log(eventType, data). */
    log_event(eventType: string, data?: unknown): Promise<LoggedEvent>;
  }
}
