/** Terminal output for meshctl: progress to stderr, results to stdout (so `-o json` stays parseable). */

export function progress(line: string): void {
  process.stderr.write(` ✓ ${line}\n`);
}

export function printTable(headers: string[], rows: (string | number)[][]): void {
  for (const line of tableLines(headers, rows)) process.stdout.write(`${line}\n`);
}

/** Columns padded to their widest cell, three spaces apart. */
export function tableLines(headers: string[], rows: (string | number)[][]): string[] {
  const cells = [headers, ...rows.map((row) => row.map(String))];
  const widths = headers.map((_, i) => Math.max(...cells.map((row) => (row[i] ?? "").length)));
  return cells.map((row) =>
    row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]))).join("   "),
  );
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

export type OutputFormat = "text" | "json";

import { UsageError } from "../lib/usage-error.js";

export function parseOutputFormat(value: string): OutputFormat {
  if (value === "text" || value === "json") return value;
  throw new UsageError(`-o/--output: unknown format "${value}" (expected text or json)`);
}

/** A bad command line: reported as one line, exit code 2. */
