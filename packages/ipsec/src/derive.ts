import { createHash } from 'node:crypto'
import { DerivationError } from './errors.js'

/** Kmesh takes the first 36 bytes of each boot id (the length of a textual UUID). */
export const BOOT_ID_BYTES = 36

export interface PairKeyInput {
  /** The raw key bytes from the key file (for the SPI in use). */
  key: Uint8Array
  /** Source node address, exactly as written in its node info. */
  srcIp: string
  /** Destination node address, exactly as written in its node info. */
  dstIp: string
  srcBootId: string
  dstBootId: string
}

/**
 * The per-pair key (reference: issue 6, "Per-pair key"):
 * SHA-512(key ‖ srcIp ‖ dstIp ‖ srcBootId[0,36) ‖ dstBootId[0,36)) truncated to the raw key's length.
 * Strings enter as their UTF-8 bytes. Both nodes compute the same value for one direction, so the sender's OUT
 * state and the receiver's IN state agree.
 */
export function derivePairKey(input: PairKeyInput): Buffer {
  const { key, srcIp, dstIp } = input
  if (key.length === 0) throw new DerivationError('raw key is empty')
  if (key.length > 64) throw new DerivationError(`raw key is ${key.length} bytes; SHA-512 yields only 64`)
  const srcBoot = bootIdPrefix(input.srcBootId, 'source')
  const dstBoot = bootIdPrefix(input.dstBootId, 'destination')
  return createHash('sha512')
    .update(key)
    .update(Buffer.from(srcIp, 'utf8'))
    .update(Buffer.from(dstIp, 'utf8'))
    .update(srcBoot)
    .update(dstBoot)
    .digest()
    .subarray(0, key.length)
}

function bootIdPrefix(bootId: string, which: string): Buffer {
  const bytes = Buffer.from(bootId, 'utf8')
  if (bytes.length < BOOT_ID_BYTES)
    throw new DerivationError(`${which} boot id is ${bytes.length} bytes; at least ${BOOT_ID_BYTES} are needed`)
  return bytes.subarray(0, BOOT_ID_BYTES)
}
