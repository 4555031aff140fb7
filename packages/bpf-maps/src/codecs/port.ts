import { checkRange, readU32, writeU32, hostIsLittleEndian } from './codec.js'

/** htons() on this host, as an integer. */
function hostToNet16(port: number): number {
  return hostIsLittleEndian ? ((port & 0xff) << 8) | (port >> 8) : port
}

/**
 * Ports in the load-balancing records are u32 whose low 16 bits hold the port in network order, the same
 * representation as bpf_sock_addr.user_port, so the kernel compares them directly: on a little-endian host
 * the bytes are [hi, lo, 0, 0] (docs/reference/kmesh-dataplane.md §2.2).
 */
export function encodeNetPort(port: number, buf: Uint8Array, offset: number): void {
  checkRange('port', port, 0xffff)
  writeU32(buf, offset, hostToNet16(port))
}

export function decodeNetPort(buf: Uint8Array, offset: number): number {
  return hostToNet16(readU32(buf, offset) & 0xffff)
}
