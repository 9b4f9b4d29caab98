import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  criTimestamp,
  formatChunk,
  lastLines,
  parseRecords,
  RecordTail,
  renderRecords,
} from "./log-format.js";

const T1 = new Date("2026-12-04T17:00:00.123Z");
const T2 = new Date("2026-12-04T17:00:05.000Z");

describe("CRI container log format", () => {
  it("stamps each line of a chunk; a piece without newline is a partial record", () => {
    assert.equal(criTimestamp(T1), "2026-12-04T17:00:00.123000000Z");
    assert.equal(
      formatChunk("stdout", "one\ntwo\nprompt> ", T1),
      "2026-12-04T17:00:00.123000000Z stdout F one\n" +
        "2026-12-04T17:00:00.123000000Z stdout F two\n" +
        "2026-12-04T17:00:00.123000000Z stdout P prompt> \n",
    );
  });

  it("renders what kubectl logs shows: joined partials, timestamps per line, tail by lines, since", () => {
    const text = formatChunk("stdout", "a\nhal", T1) + formatChunk("stderr", "f\nlast\n", T2);
    const records = parseRecords(text);
    assert.equal(renderRecords(records, { timestamps: false }), "a\nhalf\nlast\n");
    assert.equal(
      renderRecords(records, { timestamps: true }),
      "2026-12-04T17:00:00.123000000Z a\n2026-12-04T17:00:00.123000000Z half\n2026-12-04T17:00:05.000000000Z last\n",
    );
    assert.equal(renderRecords(lastLines(records, 2), { timestamps: false }), "half\nlast\n");
    assert.equal(renderRecords(lastLines(records, 0), { timestamps: false }), "");
    assert.equal(renderRecords(records, { timestamps: false, since: T2 }), "f\nlast\n");
  });

  it("a growing file is read record by record, whatever the read boundaries", () => {
    const text = formatChunk("stdout", "first\nsecond\n", T1);
    const tail = new RecordTail();
    const state = { lineStart: true };
    let out = "";
    for (let i = 0; i < text.length; i += 7)
      out += renderRecords(tail.push(text.slice(i, i + 7)), { timestamps: true }, state);
    assert.equal(out, "2026-12-04T17:00:00.123000000Z first\n2026-12-04T17:00:00.123000000Z second\n");
  });

  it("reads a raw (pre-CRI) line as stdout content", () => {
    assert.deepEqual(parseRecords("plain text\n"), [
      { time: "", stream: "stdout", partial: false, content: "plain text" },
    ]);
  });
});
