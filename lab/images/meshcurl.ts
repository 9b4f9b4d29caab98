#!/usr/bin/env node
import { get } from "node:http";

/**
 * A tiny curl for lab pods: `meshcurl.js <http-url> [--timeout-ms N]` prints the body and exits 0
 * on a 2xx/3xx answer, 1 otherwise (with the reason on stderr). Host curl/wget work too.
 */
const url = process.argv[2];
const timeoutIndex = process.argv.indexOf("--timeout-ms");
const timeoutMs = timeoutIndex >= 0 ? Number(process.argv[timeoutIndex + 1]) : 5_000;
if (!url) {
  console.error("usage: meshcurl <http-url> [--timeout-ms N]");
  process.exit(2);
}
const request = get(url, { timeout: timeoutMs }, (res) => {
  res.pipe(process.stdout);
  res.on("end", () => process.exit((res.statusCode ?? 500) < 400 ? 0 : 1));
});
request.on("timeout", () => request.destroy(new Error(`timed out after ${timeoutMs} ms`)));
request.on("error", (error) => {
  console.error(`meshcurl: ${url}: ${error.message}`);
  process.exit(1);
});
