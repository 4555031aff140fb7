/**
 * The original destination for waypoints on the real kernel: a connect to a service with a waypoint is redirected to
 * the waypoint, and the first bytes a real server socket behind the waypoint address reads are Kmesh's TLV prefix
 * naming the VIP and port the application dialled (written by sk_msg), then the application's own bytes. A
 * connection to a service without a waypoint carries no prefix.
 * Addresses: VIPs 127.10.43.1 (waypointed) and 127.10.43.2 (plain), waypoint VIP 127.10.43.9 → 127.0.43.9:15008,
 * backend 127.0.43.11:18044.
 */
import t from 'tap'
import { createServer, type Socket } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { spawn } from 'node:child_process'
import { formatIpv6 } from '@kmesh-ts/ip'
import { privilegedSkip, tempNetns } from '@kmesh-ts/testkit'
import { TLV_ORG_DST_ADDR, TLV_PAYLOAD, TLV_PREFIX_SIZE4, TLV_PREFIX_SIZE6 } from '@kmesh-ts/kernel-abi'
import { meshHarness } from './support/mesh-harness.js'
import { exchangeFrom } from './support/tcp-exchange.js'

const skip = privilegedSkip(
  'cgroup connect4 and sockops attached by BPF links, sk_msg on a sockhash through a BPF link (kernel >= 6.10), cgroup v2, bpffs',
)

const MESH = `workloads:
- uid: c//v1/Pod/t/waypoint-0
  name: waypoint-0
  namespace: t
  node: node-1
  workloadIps: ["127.0.43.9"]
  services: {"t/wp.t.svc.cluster.local": {15008: 15008}}
- uid: c//v1/Pod/t/app-0
  name: app-0
  namespace: t
  node: node-1
  workloadIps: ["127.0.43.11"]
  services: {"t/app.t.svc.cluster.local": {80: 18044}, "t/plain.t.svc.cluster.local": {80: 18044}}
services:
- name: wp
  namespace: t
  hostname: wp.t.svc.cluster.local
  vips: ["/127.10.43.9"]
  ports: {15008: 15008}
- name: app
  namespace: t
  hostname: app.t.svc.cluster.local
  vips: ["/127.10.43.1"]
  ports: {80: 18044}
  waypoint: {destination: "t/wp.t.svc.cluster.local", hboneMtlsPort: 15008}
- name: plain
  namespace: t
  hostname: plain.t.svc.cluster.local
  vips: ["/127.10.43.2"]
  ports: {80: 18044}
policies: []
`

/** A server that keeps every connection's bytes until the client's FIN and answers "ok". */
async function recordingServer(host: string, port: number): Promise<{ streams: Buffer[]; close(): Promise<void> }> {
  const streams: Buffer[] = []
  const server = createServer((s: Socket) => {
    const chunks: Buffer[] = []
    s.on('data', (d) => chunks.push(d))
    s.on('end', () => {
      streams.push(Buffer.concat(chunks))
      s.end('ok')
    })
    s.on('error', () => {})
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => resolve())
  })
  return { streams, close: () => new Promise((resolve) => server.close(() => resolve())) }
}

t.test('the waypoint reads the original destination before the payload', { skip }, async (t) => {
  const h = await meshHarness(t)
  const waypoint = await recordingServer('127.0.43.9', 15008)
  const backend = await recordingServer('127.0.43.11', 18044)
  t.teardown(async () => {
    await waypoint.close()
    await backend.close()
  })
  h.writeMesh(MESH)
  await h.start({ nodeName: 'node-1' })

  const viaWaypoint = await exchangeFrom({ cgroupPath: h.cgroup }, '127.10.43.1', 80, 7)
  t.equal(viaWaypoint.received, 2, 'the waypoint answered')
  for (let i = 0; i < 100 && waypoint.streams.length === 0; i++) await sleep(20)
  t.equal(waypoint.streams.length, 1, 'the connection reached the waypoint, not the backend')
  const stream = waypoint.streams[0]!
  t.equal(stream.length, TLV_PREFIX_SIZE4 + 7, `${TLV_PREFIX_SIZE4} bytes of prefix, then the 7 bytes sent`)
  t.equal(stream[0], TLV_ORG_DST_ADDR, 'type: original destination')
  t.equal(stream.readUInt32BE(1), 6, 'length 6: an IPv4 address and a port')
  t.equal([...stream.subarray(5, 9)].join('.'), '127.10.43.1', 'the VIP dialled')
  t.equal(stream.readUInt16BE(9), 80, 'the port dialled')
  t.equal(stream[11], TLV_PAYLOAD, 'end of the prefix')
  t.equal(stream.readUInt32BE(12), 0, 'end block length 0')
  t.same(stream.subarray(TLV_PREFIX_SIZE4), Buffer.alloc(7, 0x62), "then the application's bytes, untouched")

  const plain = await exchangeFrom({ cgroupPath: h.cgroup }, '127.10.43.2', 80, 7)
  t.equal(plain.received, 2, 'the plain service answered')
  for (let i = 0; i < 100 && backend.streams.length === 0; i++) await sleep(20)
  t.same(backend.streams, [Buffer.alloc(7, 0x62)], 'no prefix on a connection without a waypoint')
})

const NS_WAYPOINT = `
const net = require('node:net')
net.createServer((s) => {
  const chunks = []
  s.on('data', (d) => chunks.push(d))
  s.on('end', () => { console.log(JSON.stringify({ hex: Buffer.concat(chunks).toString('hex') })); s.end('ok') })
}).listen({ port: 15008, host: '::', ipv6Only: false }, () => console.log(JSON.stringify({ listening: true })))
`

const NS_MESH = `workloads:
- uid: c//v1/Pod/t/wp6-0
  name: wp6-0
  namespace: t
  node: node-1
  workloadIps: ["::1"]
  services: {"t/wp6.t.svc.cluster.local": {15008: 15008}}
- uid: c//v1/Pod/t/wp4-0
  name: wp4-0
  namespace: t
  node: node-1
  workloadIps: ["127.0.0.1"]
  services: {"t/wp4.t.svc.cluster.local": {15008: 15008}}
services:
- name: wp6
  namespace: t
  hostname: wp6.t.svc.cluster.local
  vips: ["/fd00:43::9"]
  ports: {15008: 15008}
- name: wp4
  namespace: t
  hostname: wp4.t.svc.cluster.local
  vips: ["/127.10.43.9"]
  ports: {15008: 15008}
- name: app6
  namespace: t
  hostname: app6.t.svc.cluster.local
  vips: ["/fd00:43::1"]
  ports: {80: 18044}
  waypoint: {destination: "t/wp6.t.svc.cluster.local", hboneMtlsPort: 15008}
- name: app4
  namespace: t
  hostname: app4.t.svc.cluster.local
  vips: ["/127.10.43.1"]
  ports: {80: 18044}
  waypoint: {destination: "t/wp4.t.svc.cluster.local", hboneMtlsPort: 15008}
policies: []
`

t.test('IPv6 and v4-mapped: the IPv6 form of the prefix', { skip }, async (t) => {
  const ns = tempNetns()
  t.teardown(() => ns.close())
  ns.exec(['ip', 'link', 'set', 'lo', 'up'])
  const netnsPath = `/run/netns/${ns.name}`
  const server = spawn('nsenter', [`--net=${netnsPath}`, process.execPath, '-e', NS_WAYPOINT], {
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  const serverGone = new Promise((resolve) => server.once('exit', resolve))
  t.teardown(async () => {
    server.kill()
    await serverGone
  })
  const lines: Array<{ hex?: string; listening?: boolean }> = []
  let buffered = ''
  server.stdout.on('data', (d) => {
    buffered += d
    for (let i = buffered.indexOf('\n'); i >= 0; i = buffered.indexOf('\n')) {
      lines.push(JSON.parse(buffered.slice(0, i)))
      buffered = buffered.slice(i + 1)
    }
  })
  const streams = async (n: number): Promise<Buffer[]> => {
    for (let i = 0; i < 200 && lines.filter((l) => l.hex !== undefined).length < n; i++) await sleep(20)
    return lines.filter((l) => l.hex !== undefined).map((l) => Buffer.from(l.hex!, 'hex'))
  }
  for (let i = 0; i < 200 && lines.length === 0; i++) await sleep(20)
  const h = await meshHarness(t)
  h.writeMesh(NS_MESH)
  await h.start({ netnsPath, nodeName: 'node-1' })
  const place = { cgroupPath: h.cgroup, netnsPath }

  const expectPrefix = (stream: Buffer, ip: string, what: string) => {
    t.equal(stream.length, TLV_PREFIX_SIZE6 + 7, `${what}: ${TLV_PREFIX_SIZE6} bytes of prefix, then the 7 sent`)
    t.equal(stream[0], TLV_ORG_DST_ADDR, `${what}: type`)
    t.equal(stream.readUInt32BE(1), 18, `${what}: length 18`)
    t.equal(formatIpv6(stream.subarray(5, 21)), ip, `${what}: the address dialled`)
    t.equal(stream.readUInt16BE(21), 80, `${what}: the port dialled`)
    t.equal(stream[23], TLV_PAYLOAD, `${what}: end of the prefix`)
    t.equal(stream.readUInt32BE(24), 0, `${what}: end block length 0`)
    t.same(stream.subarray(TLV_PREFIX_SIZE6), Buffer.alloc(7, 0x62), `${what}: then the bytes sent`)
  }
  const v6 = await exchangeFrom(place, 'fd00:43::1', 80, 7)
  t.equal(v6.received, 2, 'IPv6: the waypoint answered')
  expectPrefix((await streams(1))[0]!, 'fd00:43::1', 'IPv6')
  const mapped = await exchangeFrom(place, '::ffff:127.10.43.1', 80, 7)
  t.equal(mapped.received, 2, 'v4-mapped: the waypoint answered')
  expectPrefix((await streams(2))[1]!, '::ffff:127.10.43.1', 'v4-mapped')
})
