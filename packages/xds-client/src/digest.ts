// A 53-bit digest of a resource's payload bytes, so a client can tell "the same bytes as the copy it holds"
// without keeping the bytes: istiod resends every resource on a reconnect and on many pushes, and a resource
// whose bytes did not change need not be decoded or applied again. Two independent 32-bit multiply-xorshift lanes
// over 4-byte words (the length seeds one lane); not cryptographic — istiod is trusted, and the chance that a
// changed resource keeps its digest is about 2^-53 per change.

export function payloadDigest(bytes: Uint8Array): number {
  const n = bytes.length
  let a = 0x9e3779b9 ^ n
  let b = 0x85ebca6b
  let i = 0
  for (; i + 4 <= n; i += 4) {
    const w = bytes[i]! | (bytes[i + 1]! << 8) | (bytes[i + 2]! << 16) | (bytes[i + 3]! << 24)
    a = Math.imul(a ^ w, 0xcc9e2d51)
    a = (a << 15) | (a >>> 17)
    b = Math.imul(b ^ w, 0x1b873593)
    b = (b << 13) | (b >>> 19)
    b = Math.imul(b, 5) + 0xe6546b64
  }
  for (; i < n; i++) {
    a = Math.imul(a ^ bytes[i]!, 0x01000193)
    b = Math.imul(b ^ bytes[i]!, 0x5bd1e995)
  }
  a = fmix(a)
  b = fmix(b ^ a)
  // 32 bits of one lane and 21 of the other: an exact integer under 2^53
  return (a >>> 0) * 0x200000 + (b >>> 11)
}

function fmix(h: number): number {
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  return h ^ (h >>> 16)
}
