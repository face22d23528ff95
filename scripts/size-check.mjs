// Size budget of the browser Logger: minify logger.js with terser, gzip the
// result (zlib, level 9) and fail when min+gzip exceeds the budget.
// Usage: node scripts/size-check.mjs   (npm run size)
import { readFileSync } from "node:fs";
import { gzipSync, constants } from "node:zlib";
import { fileURLToPath } from "node:url";
import { minify } from "terser";

const BUDGET = 3072;
const file = fileURLToPath(new URL("../flask_tracking/static/js/logger.js", import.meta.url));
const src = readFileSync(file, "utf8");
const out = await minify(src, {
  ecma: 2020,
  compress: { passes: 2 },
  mangle: true,
  format: { comments: false },
});
const raw = Buffer.byteLength(src);
const min = Buffer.byteLength(out.code);
const gz = gzipSync(out.code, { level: constants.Z_BEST_COMPRESSION }).length;
console.log(`logger.js: ${raw} bytes raw, ${min} bytes minified, ${gz} bytes min+gzip (budget ${BUDGET})`);
// One line of output, success or not; the exit status tells which.
if (gz > BUDGET) process.exit(1);
