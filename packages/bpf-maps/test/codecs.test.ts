import t from 'tap'
import {
  backendValue,
  encodeRecord,
  endpointKey,
  frontendKey,
  managerKey,
  serviceValue,
  sockStorage,
  decodeIpAddr,
  encodeIpAddr,
  ipBytes,
  formatIpv6,
  readU32,
  readU64,
  writeU32,
  writeU64,
} from '../src/codecs/index.js'
import { encodeToBuffer } from '../src/native/buffers.js'

t.test('frontend key: IPv4 sits in bytes 0..3, zeros after; IPv6 fills 16 bytes', async (t) => {
  t.equal(encodeToBuffer(frontendKey, { address: '127.10.0.1' }).toString('hex'), '7f0a0001' + '00'.repeat(12))
  t.equal(encodeToBuffer(frontendKey, { address: 'fd00::1' }).toString('hex'), 'fd00' + '00'.repeat(13) + '01')
  t.equal(encodeToBuffer(frontendKey, { address: '::ffff:1.2.3.4' }).toString('hex'), '00'.repeat(10) + 'ffff01020304')
  t.same(frontendKey.decode(encodeToBuffer(frontendKey, { address: 'fd00:10::2:30' })), { address: 'fd00:10::2:30' })
})

t.test('service value: counts, policy and ports at Kmesh offsets, ports in network order', async (t) => {
  const v = {
    prioEndpointCount: [3, 0, 1, 0, 0, 0, 2],
    lbPolicy: 2,
    ports: [
      { servicePort: 80, targetPort: 8080 },
      { servicePort: 443, targetPort: 8443 },
    ],
    waypoint: { address: '10.96.2.10', port: 15008 },
  }
  const buf = encodeToBuffer(serviceValue, v)
  t.equal(buf.length, 132)
  t.equal(buf.readUInt32LE(0), 3)
  t.equal(buf.readUInt32LE(24), 2)
  t.equal(buf.readUInt32LE(28), 2)
  t.equal(buf.subarray(32, 36).toString('hex'), '00500000', 'service port 80 is [hi, lo, 0, 0] like user_port')
  t.equal(buf.subarray(72, 76).toString('hex'), '1f900000', 'target port 8080')
  t.equal(buf.subarray(112, 116).toString('hex'), '0a60020a')
  t.equal(buf.subarray(128, 132).toString('hex'), '3aa00000', 'waypoint port 15008')
  t.same(serviceValue.decode(buf), v)
  t.same(
    serviceValue.decode(encodeToBuffer(serviceValue, { prioEndpointCount: [1], lbPolicy: 0, ports: [] })).waypoint,
    undefined,
  )
  t.throws(
    () =>
      encodeToBuffer(serviceValue, {
        prioEndpointCount: [],
        lbPolicy: 0,
        ports: Array.from({ length: 11 }, () => ({ servicePort: 1, targetPort: 1 })),
      }),
    /at most 10 ports/,
  )
  t.throws(
    () =>
      encodeToBuffer(serviceValue, {
        prioEndpointCount: [],
        lbPolicy: 0,
        ports: [{ servicePort: 70000, targetPort: 1 }],
      }),
    /port must be an integer/,
  )
})

t.test('endpoint key and backend value round trip at an offset inside a larger buffer', async (t) => {
  const buf = Buffer.alloc(12 + 80 + 8)
  endpointKey.encode({ serviceId: 0xdeadbeef, prio: 6, backendIndex: 3 }, buf, 4)
  t.equal(buf.subarray(4, 16).toString('hex'), 'efbeadde' + '06000000' + '03000000')
  t.same(endpointKey.decode(buf, 4), { serviceId: 0xdeadbeef, prio: 6, backendIndex: 3 })
  t.throws(() => endpointKey.encode({ serviceId: 1, prio: 7, backendIndex: 1 }, buf, 0), /prio/)
  const be = { address: '127.0.0.11', services: [7, 9], waypoint: undefined }
  backendValue.encode(be, buf, 16)
  t.equal(buf.readUInt32LE(16 + 16), 2, 'service_count at 16')
  t.equal(buf.readUInt32LE(16 + 20), 7)
  t.same(backendValue.decode(buf, 16), be)
})

t.test('manager key: netns cookie in bytes 0..7 or an address', async (t) => {
  const cookie = encodeToBuffer(managerKey, { netnsCookie: 4097n })
  t.equal(cookie.toString('hex'), '0110' + '00'.repeat(14))
  t.same(managerKey.decode(cookie), { netnsCookie: 4097n })
  t.same(managerKey.decode(encodeToBuffer(managerKey, { address: 'fd00::1' })), { address: 'fd00::1' })
  t.same(
    managerKey.decode(encodeToBuffer(managerKey, { address: '10.0.0.1' })),
    { netnsCookie: 0x0100000an },
    'an IPv4 key is indistinguishable from a cookie',
  )
})

t.test('socket storage keeps flags and the original destination tuple', async (t) => {
  const tuple = new Uint8Array(36)
  tuple.set([127, 10, 0, 1], 4)
  const s = {
    connectNs: 5n,
    lastReportNs: 0n,
    direction: 2,
    connectSuccess: 1,
    viaWaypoint: true,
    hasEncoded: false,
    hasSetIp: true,
    tuple,
  }
  const buf = encodeToBuffer(sockStorage, s)
  t.equal(buf[18], 1)
  t.equal(buf[20], 1)
  t.same(sockStorage.decode(buf), s)
})

t.test('IP text and bytes', async (t) => {
  t.same(Array.from(ipBytes('1.2.3.4')), [1, 2, 3, 4])
  t.equal(formatIpv6(ipBytes('2001:db8:0:0:1:0:0:1')), '2001:db8::1:0:0:1')
  t.equal(formatIpv6(ipBytes('::1')), '::1')
  t.throws(() => ipBytes('10.0.0'), /not an IP/)
  t.throws(() => ipBytes(new Uint8Array(5)), /4 or 16 bytes/)
  const b = Buffer.alloc(16, 0xff)
  encodeIpAddr(new Uint8Array([10, 0, 0, 1]), b, 0)
  t.equal(decodeIpAddr(b, 0), '10.0.0.1', 'encoding clears stale bytes')
  // @kmesh-ts/ip's one rule: net.isIP's texts, zone ids refused (they used to be dropped silently here).
  t.throws(() => ipBytes('010.0.0.1'), /not an IP address: "010.0.0.1"/, 'no leading zeros')
  t.throws(() => encodeIpAddr('fe80::1%eth0', b, 0), /zone ids are not supported/)
  t.equal(decodeIpAddr(b, 0), '10.0.0.1', 'a refused address leaves the record alone')
  t.equal(formatIpv6(ipBytes('::ffff:10.1.2.3')), '::ffff:10.1.2.3', 'v4-mapped in mixed notation (RFC 5952 §5)')
})

t.test('encodeRecord gives the bytes encodeToBuffer gives, as a plain Uint8Array', async (t) => {
  const v = { address: 'fd00::7', services: [1, 2, 3], waypoint: { address: '10.0.0.9', port: 15008 } }
  const bytes = encodeRecord(backendValue, v)
  t.equal(Object.getPrototypeOf(bytes), Uint8Array.prototype)
  t.equal(Buffer.from(bytes).toString('hex'), encodeToBuffer(backendValue, v).toString('hex'))
  t.same(backendValue.decode(bytes), v)
})

t.test('integers: host order, wrap like the old Buffer/DataView paths, and bounds checked', async (t) => {
  const b = new Uint8Array(12)
  writeU32(b, 1, 0xdeadbeef)
  t.equal(readU32(b, 1), 0xdeadbeef)
  t.equal(Buffer.from(b).readUInt32LE(1), 0xdeadbeef, 'little-endian host')
  writeU32(b, 0, -1)
  t.equal(readU32(b, 0), 0xffffffff)
  writeU64(b, 4, 0x0123456789abcdefn)
  t.equal(readU64(b, 4), 0x0123456789abcdefn)
  t.equal(Buffer.from(b).readBigUInt64LE(4), 0x0123456789abcdefn)
  writeU64(b, 4, -1n)
  t.equal(readU64(b, 4), 0xffffffffffffffffn)
  t.throws(() => readU32(b, 9), RangeError)
  t.throws(() => writeU64(b, 5, 1n), RangeError)
})
