/** `HOST:PORT` (IPv6 as `[ADDR]:PORT`) of a listener flag, checked; errors name the flag. */
export function parseHostPort(address: string, flag: string): { host: string; port: number } {
  const i = address.lastIndexOf(':')
  const host = address.slice(0, i).replace(/^\[|\]$/g, '')
  const port = Number(address.slice(i + 1))
  if (i < 0 || !host || address.slice(i + 1) === '' || !Number.isInteger(port) || port < 0 || port > 65535)
    throw new Error(`${flag} ${address}: expected HOST:PORT`)
  return { host, port }
}
