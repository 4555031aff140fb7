/**
 * @kmesh-ts/ip — the one IP address parser and formatter of kmesh-ts. No dependencies and no Node built-ins,
 * so it runs in a browser as it runs in the daemon.
 */
export { isIp, whyNotIp, parseIp, tryParseIp, writeIp16, ipFamily, ZONE_REFUSED, type IpFamily } from './parse.js'
export {
  formatIp,
  formatIpv4,
  formatIpv6,
  canonicalIp,
  isV4Mapped,
  mapV4,
  unmapV4,
  ipHex,
  equalIp,
  compareIp,
} from './format.js'
export {
  parseCidr,
  parsePrefixLength,
  maskIp,
  formatCidr,
  cidrContains,
  maxPrefixLength,
  type Cidr,
  type ParseCidrOptions,
} from './cidr.js'
