import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { describe, it } from "node:test";
import {
  decodeHeaderBlock,
  encodeHeaderBlock,
  FLAG_FIN,
  type Frame,
  FrameReader,
  FrameWriter,
  HEADER_DICTIONARY,
} from "./frames.js";

/**
 * Byte vectors written by Go's SPDY framer (github.com/moby/spdystream/spdy v0.5.1, the one
 * kube-apiserver uses towards kubelets), one framer for all of them in this order, so the header
 * blocks share one zlib context as on a real connection:
 *   SynStreamFrame{StreamId: 1, Headers: {Streamtype: error}}
 *   SynStreamFrame{StreamId: 3, Headers: {Streamtype: data, Port: 8080, Requestid: 0}}
 *   SynReplyFrame{StreamId: 2, Headers: {}}
 *   DataFrame{StreamId: 5, Flags: FIN, Data: "hi\n"}, PingFrame{Id: 1}, GoAwayFrame{7, OK},
 *   RstStreamFrame{9, Cancel}, WindowUpdateFrame{1, 1000}, SettingsFrame{InitialWindowSize 65536}
 */
const GO_VECTORS = {
  syn1: "80030001000000290000000100000000000078f9e3c6a7c26260606004a7b392a2d4c45c6851c29a0a0a6800000000ffff",
  syn3: "800300010000002f0000000300000000000002a5470c295029930829b08bc079c3c2c0c280818181b30812c199a084cf6800000000ffff",
  reply2: "800300020000000e000000026260606000000000ffff",
  data: "000000050100000368690a",
  ping: "800300060000000400000001",
  goaway: "80030007000000080000000700000000",
  rst: "80030003000000080000000900000005",
  window: "800300090000000800000001000003e8",
  settings: "800300040000000c000000010000000700010000",
};

async function readAll(hex: string[], chunkSize?: number): Promise<Frame[]> {
  const reader = new FrameReader();
  const bytes = Buffer.from(hex.join(""), "hex");
  const frames: Frame[] = [];
  try {
    const step = chunkSize ?? bytes.length;
    for (let i = 0; i < bytes.length; i += step)
      frames.push(...(await reader.push(bytes.subarray(i, i + step))));
  } finally {
    reader.close();
  }
  return frames;
}

describe("SPDY/3 frames", () => {
  it("uses the SPDY/3 header dictionary (1423 bytes, as golang.org/x/net/spdy)", () => {
    assert.equal(HEADER_DICTIONARY.length, 1423);
    assert.equal(
      createHash("sha256").update(HEADER_DICTIONARY).digest("hex"),
      // sha256 of headerDictionary in moby/spdystream v0.5.1 spdy/dictionary.go
      "51d27341373f923f3cd88e1eb7162aeaa3723d7585ff2399201dc06498407f02",
    );
    assert.equal(HEADER_DICTIONARY.subarray(0, 11).toString("latin1"), "\0\0\0\x07options");
    assert.ok(HEADER_DICTIONARY.toString("latin1").endsWith(",*,enq=0."));
  });

  it("reads Go's frames, header blocks through one shared zlib context", async () => {
    const frames = await readAll(Object.values(GO_VECTORS));
    assert.deepEqual(frames[0], {
      type: "syn_stream",
      streamId: 1,
      associatedStreamId: 0,
      priority: 0,
      flags: 0,
      headers: { streamtype: ["error"] },
    });
    assert.equal(frames[1].type, "syn_stream");
    assert.deepEqual(frames[1].type === "syn_stream" && frames[1].headers, {
      streamtype: ["data"],
      port: ["8080"],
      requestid: ["0"],
    });
    assert.deepEqual(frames[2], { type: "syn_reply", streamId: 2, flags: 0, headers: {} });
    assert.deepEqual(frames[3], { type: "data", streamId: 5, flags: FLAG_FIN, data: Buffer.from("hi\n") });
    assert.deepEqual(frames[4], { type: "ping", id: 1 });
    assert.deepEqual(frames[5], { type: "goaway", lastGoodStreamId: 7, status: 0 });
    assert.deepEqual(frames[6], { type: "rst_stream", streamId: 9, status: 5 });
    assert.deepEqual(frames[7], { type: "window_update", streamId: 1, delta: 1000 });
    assert.deepEqual(frames[8], {
      type: "settings",
      flags: 0,
      settings: [{ flags: 0, id: 7, value: 65536 }],
    });
  });

  it("reads the same frames when the bytes arrive one at a time", async () => {
    assert.deepEqual(await readAll(Object.values(GO_VECTORS), 1), await readAll(Object.values(GO_VECTORS)));
  });

  it("rejects a header block compressed without the SPDY dictionary context", async () => {
    // syn3 alone lacks the zlib stream header and history that syn1 carried.
    await assert.rejects(readAll([GO_VECTORS.syn3]), /cannot decompress the header block of stream 3/);
  });

  it("writes the fixed-layout frames byte for byte as Go does", () => {
    const writer = new FrameWriter();
    assert.equal(writer.data(5, Buffer.from("hi\n"), FLAG_FIN).toString("hex"), GO_VECTORS.data);
    assert.equal(writer.ping(1).toString("hex"), GO_VECTORS.ping);
    assert.equal(writer.goAway(7, 0).toString("hex"), GO_VECTORS.goaway);
    assert.equal(writer.rstStream(9, 5).toString("hex"), GO_VECTORS.rst);
    writer.close();
  });

  it("writes header blocks as zlib stored blocks with sync flushes, bytes Go's framer was checked to read", () => {
    // Fed to spdy.Framer.ReadFrame (moby/spdystream v0.5.1): SynReplyFrame{1, {}} and
    // SynReplyFrame{3, {"X-A": ["1", "2"]}}. Each block ends with the sync-flush marker 0000ffff:
    // without it Go's inflater reads past the frame and fails with "compressed payload size was incorrect".
    const writer = new FrameWriter();
    assert.equal(
      writer.synReply(1, {}).toString("hex"),
      "80030002000000180000000178f9e3c6a7c2000400fbff00000000000000ffff",
    );
    assert.equal(
      writer.synReply(3, { "x-a": ["1", "2"] }).toString("hex"),
      "800300020000002000000003001200edff0000000100000003782d6100000003310032000000ffff",
    );
  });

  it("writes header frames a reader with a fresh context decodes, across several blocks", async () => {
    const writer = new FrameWriter();
    const reader = new FrameReader();
    const bytes = Buffer.concat([
      writer.synReply(1, {}),
      writer.synReply(3, { "x-a": ["1", "2"] }),
      writer.synStream(2, { streamType: ["stdout"] }, FLAG_FIN),
      writer.headers(3, { done: ["yes"] }),
    ]);
    // SYN_REPLY layout: control bit + version 3, type 2, flags 0, then length and the stream id.
    assert.equal(bytes.subarray(0, 4).toString("hex"), "80030002");
    assert.deepEqual(await reader.push(bytes), [
      { type: "syn_reply", streamId: 1, flags: 0, headers: {} },
      { type: "syn_reply", streamId: 3, flags: 0, headers: { "x-a": ["1", "2"] } },
      {
        type: "syn_stream",
        streamId: 2,
        associatedStreamId: 0,
        priority: 0,
        flags: FLAG_FIN,
        headers: { streamtype: ["stdout"] },
      },
      { type: "headers", streamId: 3, flags: 0, headers: { done: ["yes"] } },
    ]);
    writer.close();
    reader.close();
  });

  it("encodes header blocks as count, then length-prefixed lowercase names and NUL-joined values", () => {
    const block = encodeHeaderBlock({ StreamType: ["error"], v: ["a", "b"] });
    assert.equal(
      block.toString("hex"),
      "00000002" +
        "0000000a" +
        Buffer.from("streamtype").toString("hex") +
        "00000005" +
        Buffer.from("error").toString("hex") +
        "00000001" +
        Buffer.from("v").toString("hex") +
        "00000003" +
        "610062",
    );
    assert.deepEqual(decodeHeaderBlock(block, 1), { streamtype: ["error"], v: ["a", "b"] });
    assert.throws(() => decodeHeaderBlock(block.subarray(0, 10), 7), /truncated header block on stream 7/);
  });
});
