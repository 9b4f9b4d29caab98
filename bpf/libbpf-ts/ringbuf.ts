/**
 * A consumer of a BPF_MAP_TYPE_RINGBUF map through libbpf's ring_buffer__new/consume. consume()
 * never blocks: it hands every record committed so far to the callback (on the calling thread) and
 * returns their count, so the owner decides when to read (a timer) and nothing ever waits in the
 * kernel. Records are copied out before the callback sees them: the ring's memory is reused as
 * soon as consume returns. The producer never waits for us: when the ring is full, its reserve
 * fails and the program counts the loss itself.
 */
import { closeSync } from "node:fs";
import { BpfError, check } from "./errors.js";
import { koffi, lastErrno, native, ringSampleCallbackType } from "./native.js";

export type RingRecordHandler = (record: Buffer) => void;

export class RingBufferReader {
  private closed = false;
  private failure: unknown;

  private constructor(
    private readonly handle: unknown,
    private readonly callback: ReturnType<typeof koffi.register>,
    private readonly ownedFd?: number,
  ) {}

  /** Opens a pinned ring map (its fd is closed with the reader). */
  static openPinned(path: string, onRecord: RingRecordHandler): RingBufferReader {
    const fd = check(native.bpf_obj_get(path), `bpf_obj_get(${path})`);
    try {
      return RingBufferReader.open(fd, onRecord, fd);
    } catch (error) {
      closeSync(fd);
      throw error;
    }
  }

  /** Reads the ring map behind mapFd (the fd stays the caller's). */
  static open(mapFd: number, onRecord: RingRecordHandler, ownedFd?: number): RingBufferReader {
    let reader: RingBufferReader | undefined;
    const callback = koffi.register((_ctx: unknown, data: unknown, size: number | bigint) => {
      try {
        onRecord(Buffer.from(new Uint8Array(koffi.view(data, Number(size)))));
        return 0;
      } catch (error) {
        // a throwing handler must not unwind through libbpf: stop this consume, rethrow after
        if (reader) reader.failure = error;
        return -1;
      }
    }, koffi.pointer(ringSampleCallbackType));
    const handle = native.ring_buffer__new(mapFd, callback, null, null);
    if (!handle) {
      const errno = lastErrno();
      koffi.unregister(callback);
      throw new BpfError("ring_buffer__new", errno);
    }
    reader = new RingBufferReader(handle, callback, ownedFd);
    return reader;
  }

  /** Hands every record available now to the handler; returns how many. */
  consume(): number {
    if (this.closed) throw new Error("ring buffer reader is closed");
    const count = native.ring_buffer__consume(this.handle);
    if (this.failure !== undefined) {
      const failure = this.failure;
      this.failure = undefined;
      throw failure;
    }
    if (count < 0) throw new BpfError("ring_buffer__consume", -count);
    return count;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    native.ring_buffer__free(this.handle);
    koffi.unregister(this.callback);
    if (this.ownedFd !== undefined) closeSync(this.ownedFd);
  }
}
