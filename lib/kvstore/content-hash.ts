/**
 * A 53-bit fingerprint of a value's bytes, so a watch store can tell "same bytes as before" without
 * keeping the bytes: two independent 32-bit FNV-1a lanes (different offset bases, the second over
 * the bytes mixed with their position, seeded with the length) folded into one safe integer. Not a
 * cryptographic hash: a remote that crafted a collision could only hide a change of its own entry,
 * which it controls anyway. A plain number costs nothing on the heap next to the entry (the raw
 * JSON of 50k ipcache entries and 10k services was ~15 MB of strings).
 */
export function contentHash(bytes: Uint8Array): number {
  let a = 0x811c9dc5;
  let b = 0x01000193 ^ bytes.length;
  for (let i = 0; i < bytes.length; i++) {
    a = Math.imul(a ^ bytes[i], 0x01000193);
    b = Math.imul(b ^ (bytes[i] + i), 0x01000193);
  }
  // 32 bits of a, 21 of b: the largest integer a double holds exactly
  return (a >>> 0) * 0x200000 + ((b >>> 0) & 0x1fffff);
}
