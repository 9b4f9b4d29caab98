import * as zlib from "node:zlib";

/**
 * SPDY/3 framing as Kubernetes speaks it (k8s.io/apimachinery/pkg/util/httpstream/spdy on top of
 * github.com/moby/spdystream/spdy, itself the old golang.org/x/net/spdy):
 * https://github.com/moby/spdystream/blob/v0.5.1/spdy/read.go and write.go.
 *
 *   control frame: 1 | version(15) | type(16) | flags(8) | length(24) | payload
 *   data frame:    0 | stream id(31)           | flags(8) | length(24) | payload
 *
 * Header blocks (SYN_STREAM, SYN_REPLY, HEADERS) are zlib-compressed with the SPDY/3 dictionary,
 * one compression context per direction for the whole connection, each block ending with a sync
 * flush. Names are lowercase; several values of one name are joined by NUL.
 */

export const SPDY_VERSION = 3;

export const FrameType = {
  SynStream: 1,
  SynReply: 2,
  RstStream: 3,
  Settings: 4,
  Ping: 6,
  GoAway: 7,
  Headers: 8,
  WindowUpdate: 9,
} as const;

export const FLAG_FIN = 0x01;
export const FLAG_UNIDIRECTIONAL = 0x02;

export const RstStatus = {
  ProtocolError: 1,
  InvalidStream: 2,
  RefusedStream: 3,
  UnsupportedVersion: 4,
  Cancel: 5,
  InternalError: 6,
  FlowControlError: 7,
  StreamInUse: 8,
  StreamAlreadyClosed: 9,
} as const;

/** Largest payload of one frame (24-bit length). */
export const MAX_DATA_LENGTH = 0xffffff;

/** Header names and values: name -> values (several values travel NUL-joined). */
export type SpdyHeaders = Record<string, string[]>;

export type Frame =
  | {
      type: "syn_stream";
      streamId: number;
      associatedStreamId: number;
      priority: number;
      flags: number;
      headers: SpdyHeaders;
    }
  | { type: "syn_reply"; streamId: number; flags: number; headers: SpdyHeaders }
  | { type: "headers"; streamId: number; flags: number; headers: SpdyHeaders }
  | { type: "rst_stream"; streamId: number; status: number }
  | { type: "settings"; flags: number; settings: { flags: number; id: number; value: number }[] }
  | { type: "ping"; id: number }
  | { type: "goaway"; lastGoodStreamId: number; status: number }
  | { type: "window_update"; streamId: number; delta: number }
  | { type: "data"; streamId: number; flags: number; data: Buffer }
  | { type: "unknown"; frameType: number; flags: number; payload: Buffer };

// The SPDY/3 header dictionary (draft 3 section 2.6.10.1): length-prefixed words, then a raw tail.
const DICTIONARY_WORDS = [
  "options",
  "head",
  "post",
  "put",
  "delete",
  "trace",
  "accept",
  "accept-charset",
  "accept-encoding",
  "accept-language",
  "accept-ranges",
  "age",
  "allow",
  "authorization",
  "cache-control",
  "connection",
  "content-base",
  "content-encoding",
  "content-language",
  "content-length",
  "content-location",
  "content-md5",
  "content-range",
  "content-type",
  "date",
  "etag",
  "expect",
  "expires",
  "from",
  "host",
  "if-match",
  "if-modified-since",
  "if-none-match",
  "if-range",
  "if-unmodified-since",
  "last-modified",
  "location",
  "max-forwards",
  "pragma",
  "proxy-authenticate",
  "proxy-authorization",
  "range",
  "referer",
  "retry-after",
  "server",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
  "user-agent",
  "vary",
  "via",
  "warning",
  "www-authenticate",
  "method",
  "get",
  "status",
  "200 OK",
  "version",
  "HTTP/1.1",
  "url",
  "public",
  "set-cookie",
  "keep-alive",
  "origin",
];
const DICTIONARY_TAIL =
  "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request401 Unauthorized403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented503 Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,image/jpg,image/gif,application/xml,application/xhtml+xml,text/plain,text/javascript,publicprivatemax-age=gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0.";

export const HEADER_DICTIONARY: Buffer = Buffer.concat([
  ...DICTIONARY_WORDS.map((word) => {
    const bytes = Buffer.from(word, "latin1");
    const length = Buffer.alloc(4);
    length.writeUInt32BE(bytes.length);
    return Buffer.concat([length, bytes]);
  }),
  Buffer.from(DICTIONARY_TAIL, "latin1"),
]);

/**
 * Header compression towards the peer. Any valid zlib stream that uses the dictionary context will
 * do for the peer's single long-lived decompressor (Go: zlib.NewReaderDict), so each block is sent
 * as deflate "stored" blocks: the zlib header (with FDICT and the dictionary's Adler-32) once, then
 * per header block non-final stored blocks, byte-aligned like a sync flush. This is synchronous
 * (Node's zlib is not, for a context that outlives one call) and header blocks are tiny.
 */
export class HeaderCompressor {
  private started = false;

  compress(block: Buffer): Buffer {
    const parts: Buffer[] = [];
    if (!this.started) {
      this.started = true;
      // CMF 0x78 (deflate, 32 KiB window), FLG 0xf9 (FDICT, level 3, check bits): what Go writes.
      const head = Buffer.alloc(6);
      head.writeUInt16BE(0x78f9, 0);
      head.writeUInt32BE(DICTIONARY_ADLER32, 2);
      parts.push(head);
    }
    let offset = 0;
    do {
      const piece = block.subarray(offset, offset + 0xffff);
      const stored = Buffer.alloc(5);
      stored.writeUInt8(0x00, 0); // BFINAL 0, BTYPE 00 (stored), padding to the byte boundary
      stored.writeUInt16LE(piece.length, 1);
      stored.writeUInt16LE(~piece.length & 0xffff, 3);
      parts.push(stored, piece);
      offset += piece.length;
    } while (offset < block.length);
    // The sync-flush marker (an empty stored block) as zlib's Z_SYNC_FLUSH ends a block: Go's
    // inflater hands out a stored block's bytes only on reaching the next block header, which must
    // therefore be inside this frame's payload.
    parts.push(SYNC_FLUSH_MARKER);
    return Buffer.concat(parts);
  }
}

const SYNC_FLUSH_MARKER = Buffer.from([0x00, 0x00, 0x00, 0xff, 0xff]);

/** Adler-32 of the dictionary (the DICTID a zlib stream using it declares). */
export const DICTIONARY_ADLER32 = adler32(HEADER_DICTIONARY);

function adler32(data: Buffer): number {
  let a = 1;
  let b = 0;
  for (const byte of data) {
    a = (a + byte) % 65521;
    b = (b + a) % 65521;
  }
  return ((b << 16) | a) >>> 0;
}

/**
 * Header decompression from the peer: one zlib inflater for the connection's lifetime, each block
 * ending in a sync flush. Node's zlib only keeps such a context in its asynchronous stream form,
 * so blocks are decompressed one after another, in order (the pattern `ws` uses for
 * permessage-deflate).
 */
export class HeaderDecompressor {
  private readonly engine = zlib.createInflate({ dictionary: HEADER_DICTIONARY });
  private output: Buffer[] = [];
  private failure: Error | undefined;
  /** Rejects the block in progress: on an error zlib never calls the flush callback. */
  private rejectPending: ((error: Error) => void) | undefined;

  constructor() {
    this.engine.on("data", (chunk: Buffer) => this.output.push(chunk));
    this.engine.on("error", (error) => {
      this.failure = error;
      this.rejectPending?.(error);
    });
  }

  decompress(block: Buffer): Promise<Buffer> {
    if (this.failure) return Promise.reject(this.failure);
    if (block.length === 0) return Promise.resolve(Buffer.alloc(0));
    return new Promise((resolve, reject) => {
      this.rejectPending = reject;
      this.engine.write(block);
      this.engine.flush(zlib.constants.Z_SYNC_FLUSH, () => {
        this.rejectPending = undefined;
        if (this.failure) {
          reject(this.failure);
          return;
        }
        const result = Buffer.concat(this.output);
        this.output = [];
        resolve(result);
      });
    });
  }

  close(): void {
    this.engine.close();
  }
}

export class SpdyProtocolError extends Error {
  constructor(
    message: string,
    readonly streamId = 0,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "SpdyProtocolError";
  }
}

export function encodeHeaderBlock(headers: SpdyHeaders): Buffer {
  const parts: Buffer[] = [];
  const u32 = (n: number) => {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(n);
    return b;
  };
  const entries = Object.entries(headers);
  parts.push(u32(entries.length));
  for (const [name, values] of entries) {
    const nameBytes = Buffer.from(name.toLowerCase());
    const valueBytes = Buffer.from(values.join("\0"));
    parts.push(u32(nameBytes.length), nameBytes, u32(valueBytes.length), valueBytes);
  }
  return Buffer.concat(parts);
}

export function decodeHeaderBlock(block: Buffer, streamId: number): SpdyHeaders {
  const headers: SpdyHeaders = {};
  let offset = 0;
  const need = (n: number) => {
    if (offset + n > block.length)
      throw new SpdyProtocolError(`truncated header block on stream ${streamId}`, streamId);
  };
  need(4);
  const count = block.readUInt32BE(offset);
  offset += 4;
  for (let i = 0; i < count; i++) {
    need(4);
    const nameLength = block.readUInt32BE(offset);
    offset += 4;
    need(nameLength);
    const name = block
      .subarray(offset, offset + nameLength)
      .toString()
      .toLowerCase();
    offset += nameLength;
    need(4);
    const valueLength = block.readUInt32BE(offset);
    offset += 4;
    need(valueLength);
    const value = block.subarray(offset, offset + valueLength).toString();
    offset += valueLength;
    headers[name] = [...(headers[name] ?? []), ...value.split("\0")];
  }
  return headers;
}

/** First value of a header, by case-insensitive name. */
export function headerValue(headers: SpdyHeaders, name: string): string | undefined {
  return headers[name.toLowerCase()]?.[0];
}

function controlHeader(type: number, flags: number, length: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeUInt16BE(0x8000 | SPDY_VERSION, 0);
  b.writeUInt16BE(type, 2);
  // >>> 0: the shift can set the sign bit, and writeUInt32BE rejects negative numbers.
  b.writeUInt32BE((((flags & 0xff) << 24) | (length & 0xffffff)) >>> 0, 4);
  return b;
}

function u32(...values: number[]): Buffer {
  const b = Buffer.alloc(values.length * 4);
  values.forEach((v, i) => {
    b.writeUInt32BE(v >>> 0, i * 4);
  });
  return b;
}

/** Writes frames for one direction of a connection (owns that direction's header compression). */
export class FrameWriter {
  private readonly compressor = new HeaderCompressor();

  synReply(streamId: number, headers: SpdyHeaders, flags = 0): Buffer {
    const block = this.compressor.compress(encodeHeaderBlock(headers));
    return Buffer.concat([controlHeader(FrameType.SynReply, flags, block.length + 4), u32(streamId), block]);
  }

  synStream(streamId: number, headers: SpdyHeaders, flags = 0, associatedStreamId = 0, priority = 0): Buffer {
    const block = this.compressor.compress(encodeHeaderBlock(headers));
    const fixed = Buffer.alloc(10);
    fixed.writeUInt32BE(streamId, 0);
    fixed.writeUInt32BE(associatedStreamId, 4);
    fixed.writeUInt8((priority & 0x7) << 5, 8);
    fixed.writeUInt8(0, 9);
    return Buffer.concat([controlHeader(FrameType.SynStream, flags, block.length + 10), fixed, block]);
  }

  headers(streamId: number, headers: SpdyHeaders, flags = 0): Buffer {
    const block = this.compressor.compress(encodeHeaderBlock(headers));
    return Buffer.concat([controlHeader(FrameType.Headers, flags, block.length + 4), u32(streamId), block]);
  }

  data(streamId: number, data: Buffer, flags = 0): Buffer {
    if (data.length > MAX_DATA_LENGTH)
      throw new RangeError(`data frame of ${data.length} bytes is too large`);
    const head = Buffer.alloc(8);
    head.writeUInt32BE(streamId & 0x7fffffff, 0);
    head.writeUInt32BE((((flags & 0xff) << 24) | data.length) >>> 0, 4);
    return Buffer.concat([head, data]);
  }

  rstStream(streamId: number, status: number): Buffer {
    return Buffer.concat([controlHeader(FrameType.RstStream, 0, 8), u32(streamId, status)]);
  }

  ping(id: number): Buffer {
    return Buffer.concat([controlHeader(FrameType.Ping, 0, 4), u32(id)]);
  }

  goAway(lastGoodStreamId: number, status = 0): Buffer {
    return Buffer.concat([controlHeader(FrameType.GoAway, 0, 8), u32(lastGoodStreamId, status)]);
  }

  close(): void {
    // nothing to release: the compressor is plain code
  }
}

/**
 * Reads frames from the bytes of one direction as they arrive (any chunking); owns that
 * direction's header decompression.
 */
export class FrameReader {
  private buffer: Buffer = Buffer.alloc(0);
  private readonly decompressor = new HeaderDecompressor();

  /**
   * Appends bytes and resolves with every frame now complete. Calls must be chained (each after
   * the previous one resolved): header blocks share one decompression context. Rejects with
   * SpdyProtocolError on bad input.
   */
  async push(chunk: Buffer): Promise<Frame[]> {
    this.buffer = this.buffer.length ? Buffer.concat([this.buffer, chunk]) : chunk;
    const frames: Frame[] = [];
    while (this.buffer.length >= 8) {
      const length = this.buffer.readUInt32BE(4) & 0xffffff;
      if (this.buffer.length < 8 + length) break;
      const frame = this.buffer.subarray(0, 8 + length);
      this.buffer = this.buffer.subarray(8 + length);
      frames.push(await this.parse(frame));
    }
    return frames;
  }

  private async headerBlock(payload: Buffer, streamId: number): Promise<SpdyHeaders> {
    let block: Buffer;
    try {
      block = await this.decompressor.decompress(payload);
    } catch (error) {
      throw new SpdyProtocolError(`cannot decompress the header block of stream ${streamId}`, streamId, {
        cause: error,
      });
    }
    return decodeHeaderBlock(block, streamId);
  }

  private async parse(frame: Buffer): Promise<Frame> {
    const first = frame.readUInt32BE(0);
    const flags = frame[4];
    const payload = frame.subarray(8);
    if ((first & 0x80000000) === 0) {
      const streamId = first & 0x7fffffff;
      if (streamId === 0) throw new SpdyProtocolError("data frame on stream 0");
      return { type: "data", streamId, flags, data: Buffer.from(payload) };
    }
    const version = (first >>> 16) & 0x7fff;
    const type = first & 0xffff;
    if (version !== SPDY_VERSION) throw new SpdyProtocolError(`unsupported SPDY version ${version}`);
    const need = (n: number) => {
      if (payload.length < n) throw new SpdyProtocolError(`control frame type ${type} is too short`);
    };
    switch (type) {
      case FrameType.SynStream: {
        need(10);
        const streamId = payload.readUInt32BE(0) & 0x7fffffff;
        const associatedStreamId = payload.readUInt32BE(4) & 0x7fffffff;
        const priority = payload[8] >> 5;
        const headers = await this.headerBlock(payload.subarray(10), streamId);
        if (streamId === 0) throw new SpdyProtocolError("SYN_STREAM for stream 0");
        return { type: "syn_stream", streamId, associatedStreamId, priority, flags, headers };
      }
      case FrameType.SynReply:
      case FrameType.Headers: {
        need(4);
        const streamId = payload.readUInt32BE(0) & 0x7fffffff;
        const headers = await this.headerBlock(payload.subarray(4), streamId);
        return { type: type === FrameType.SynReply ? "syn_reply" : "headers", streamId, flags, headers };
      }
      case FrameType.RstStream:
        need(8);
        return {
          type: "rst_stream",
          streamId: payload.readUInt32BE(0) & 0x7fffffff,
          status: payload.readUInt32BE(4),
        };
      case FrameType.Settings: {
        need(4);
        const count = payload.readUInt32BE(0);
        need(4 + count * 8);
        const settings = [];
        for (let i = 0; i < count; i++) {
          const idWord = payload.readUInt32BE(4 + i * 8);
          settings.push({
            flags: idWord >>> 24,
            id: idWord & 0xffffff,
            value: payload.readUInt32BE(8 + i * 8),
          });
        }
        return { type: "settings", flags, settings };
      }
      case FrameType.Ping:
        need(4);
        return { type: "ping", id: payload.readUInt32BE(0) };
      case FrameType.GoAway:
        need(8);
        return {
          type: "goaway",
          lastGoodStreamId: payload.readUInt32BE(0) & 0x7fffffff,
          status: payload.readUInt32BE(4),
        };
      case FrameType.WindowUpdate:
        need(8);
        return {
          type: "window_update",
          streamId: payload.readUInt32BE(0) & 0x7fffffff,
          delta: payload.readUInt32BE(4) & 0x7fffffff,
        };
      default:
        return { type: "unknown", frameType: type, flags, payload: Buffer.from(payload) };
    }
  }

  close(): void {
    this.decompressor.close();
  }
}
