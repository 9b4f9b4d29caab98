/**
 * KVStoreMesh copies a remote entry byte for byte (Cilium's KVPairCreator), but only after the
 * same validation the agent applies: the decoder throws InvalidEntryError for a bad entry (the
 * WatchStore refuses and counts it), and a good one is kept as the bytes to write.
 */
import type { EntryDecoder } from "../../lib/kvstore/remote-validation.js";

export function validatedRaw<T>(decode: EntryDecoder<T>): EntryDecoder<string> {
  return (key, suffix, raw) => {
    decode(key, suffix, raw);
    return raw.toString("utf8");
  };
}
