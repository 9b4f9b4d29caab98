/**
 * Container logs in the CRI format every runtime writes and the kubelet reads
 * (https://github.com/kubernetes/kubernetes/blob/v1.33.0/pkg/kubelet/kuberuntime/logs/logs.go):
 *
 *   2016-10-06T00:17:09.669794202Z stdout F a whole line
 *   2016-10-06T00:17:09.669794202Z stdout P the start of a line that continues in the next record
 *
 * Each chunk a container writes becomes one record per line; a trailing piece without newline is
 * a partial (P) record, so output shows up at once and `kubectl logs` puts the pieces together.
 */

export type LogStream = "stdout" | "stderr";

export interface LogRecord {
  time: string;
  stream: LogStream;
  partial: boolean;
  content: string;
}

/** RFC 3339 with nanoseconds, as the runtimes write (JS has milliseconds: padded). */
export function criTimestamp(date: Date): string {
  return `${date.toISOString().slice(0, -1)}000000Z`;
}

/** The records of one chunk of container output. */
export function formatChunk(stream: LogStream, chunk: string, now = new Date()): string {
  const time = criTimestamp(now);
  const pieces = chunk.split("\n");
  const tail = pieces.pop() ?? "";
  let out = "";
  for (const line of pieces) out += `${time} ${stream} F ${line}\n`;
  if (tail) out += `${time} ${stream} P ${tail}\n`;
  return out;
}

/**
 * Parses whole records (text up to its last newline; the caller keeps the rest for later).
 * A line that is not a record is kept as stdout content, so a file written raw still reads.
 */
export function parseRecords(text: string): LogRecord[] {
  const records: LogRecord[] = [];
  for (const line of text.split("\n")) {
    if (!line) continue;
    const match = /^(\S+) (stdout|stderr) ([PF]) (.*)$/s.exec(line);
    if (match)
      records.push({
        time: match[1],
        stream: match[2] as LogStream,
        partial: match[3] === "P",
        content: match[4],
      });
    else records.push({ time: "", stream: "stdout", partial: false, content: line });
  }
  return records;
}

export interface RenderOptions {
  timestamps: boolean;
  /** Only records at or after this time. */
  since?: Date;
}

/** Groups records into lines (a line's partial records, then its final one; a trailing partial group too). */
export function groupLines(records: LogRecord[]): LogRecord[][] {
  const lines: LogRecord[][] = [];
  let current: LogRecord[] = [];
  for (const record of records) {
    current.push(record);
    if (!record.partial) {
      lines.push(current);
      current = [];
    }
  }
  if (current.length) lines.push(current);
  return lines;
}

/** The records of the last n lines (n < 0: all). */
export function lastLines(records: LogRecord[], n: number): LogRecord[] {
  if (n < 0) return records;
  if (n === 0) return [];
  return groupLines(records).slice(-n).flat();
}

/**
 * The text kubectl shows. With timestamps each line starts with its first record's time; a
 * partial record ends without newline (the next record continues the line). `state` carries
 * whether the next record starts a line, across calls of a follow.
 */
export function renderRecords(
  records: LogRecord[],
  options: RenderOptions,
  state: { lineStart: boolean } = { lineStart: true },
): string {
  let out = "";
  for (const record of records) {
    if (options.since && record.time && new Date(record.time) < options.since) continue;
    if (options.timestamps && state.lineStart && record.time) out += `${record.time} `;
    out += record.content;
    if (!record.partial) out += "\n";
    state.lineStart = !record.partial;
  }
  return out;
}

/**
 * Reads a growing log file record by record: feed it what was appended, get the whole records
 * (a record cut by the read waits for its rest).
 */
export class RecordTail {
  private rest = "";

  push(appended: string): LogRecord[] {
    const text = this.rest + appended;
    const end = text.lastIndexOf("\n");
    this.rest = text.slice(end + 1);
    return end < 0 ? [] : parseRecords(text.slice(0, end + 1));
  }
}
