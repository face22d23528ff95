// ES-module entry of the flask-tracking Logger (see the comment at the top of
// logger.js). logger.js has no module syntax, so importing it just runs it
// (browsers and node alike); it leaves its factory on globalThis, re-exported
// here.
//
//   import Logger from "/activity/logger.mjs";                 // the page's Logger
//   import { createLogger } from "flask-tracking-logger";      // a new instance
import "./logger.js";

/** Creates an independent Logger: createLogger(windowLike?, options?). */
export const createLogger = globalThis.FlaskTrackingLogger;

/** The page's Logger (window.Logger); undefined where there is no document. */
export const Logger = globalThis.Logger;

export default Logger;
