// Size budget of the browser Logger: gzip the shipped static/js/logger.min.js
// (zlib, level 9, as a server would) and fail when it is over the budget.
// Usage: node scripts/size-check.mjs   (npm run size; part of npm test)
import { readFileSync } from "node:fs";
import { gzipSync, constants } from "node:zlib";

const BUDGET = 3072;
const dir = new URL("../static/js/", import.meta.url);
const source = readFileSync(new URL("logger.js", dir));
const min = readFileSync(new URL("logger.min.js", dir));
const gz = gzipSync(min, { level: constants.Z_BEST_COMPRESSION }).length;
console.log(
  `logger.min.js: ${gz} bytes gzipped (budget ${BUDGET}), ${min.length} bytes minified; ` +
    `logger.js ${source.length} bytes`,
);
// One line of output, success or not; the exit status tells which.
if (gz > BUDGET) process.exit(1);
