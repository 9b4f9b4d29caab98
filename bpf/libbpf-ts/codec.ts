/**
 * Codecs turn fixed-layout C structs into TypeScript values and back. Keys and values of a
 * BpfMap are described by one codec each; encode writes exactly `size` bytes at `offset`.
 */
export interface Codec<T> {
  readonly size: number;
  encode(value: T, target: Buffer, offset: number): void;
  decode(source: Buffer, offset: number): T;
}

export function encodeToBuffer<T>(codec: Codec<T>, value: T): Buffer {
  const buffer = Buffer.alloc(codec.size);
  codec.encode(value, buffer, 0);
  return buffer;
}

export const u32Codec: Codec<number> = {
  size: 4,
  encode: (value, target, offset) => {
    target.writeUInt32LE(value, offset);
  },
  decode: (source, offset) => source.readUInt32LE(offset),
};

export const u16Codec: Codec<number> = {
  size: 2,
  encode: (value, target, offset) => {
    target.writeUInt16LE(value, offset);
  },
  decode: (source, offset) => source.readUInt16LE(offset),
};

export const u64Codec: Codec<bigint> = {
  size: 8,
  encode: (value, target, offset) => {
    target.writeBigUInt64LE(value, offset);
  },
  decode: (source, offset) => source.readBigUInt64LE(offset),
};

/** Raw bytes, for maps whose layout the caller handles itself. */
export function bytesCodec(size: number): Codec<Buffer> {
  return {
    size,
    encode: (value, target, offset) => {
      if (value.length !== size) throw new RangeError(`expected ${size} bytes, got ${value.length}`);
      value.copy(target, offset);
    },
    decode: (source, offset) => Buffer.from(source.subarray(offset, offset + size)),
  };
}
