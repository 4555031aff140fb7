/**
 * Connection telemetry on the real kernel: connects from the managed cgroup produce open and close records with the
 * byte counts the client sent and received, the VIP it dialled as originalDst and the workload and service from the
 * mesh; processes outside the cgroup produce none; an inbound connection to a listener inside the cgroup is reported
 * as inbound; the lost counter is exposed.
 * Addresses: VIP 127.10.41.1, backend 127.0.41.11, a listener inside the cgroup on 127.0.41.21.
 */
import t from 'tap'
import { setTimeout as sleep } from 'node:timers/promises'
import { execFileSync, spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { privilegedSkip, tempNetns } from '@kmesh-ts/testkit'
import { TELEMETRY_RINGBUF_BYTES } from '@kmesh-ts/kernel-abi'
import { meshHarness, meshYaml } from './support/mesh-harness.js'
import { exchangeFrom, exchangeServer } from './support/tcp-exchange.js'
import type { ConnectionRecord } from '../src/telemetry/index.js'

const skip = privilegedSkip(
  'BPF_PROG_TYPE_SOCK_OPS and cgroup connect4 attached by BPF links, a BPF ring buffer (kernel >= 5.15), cgroup v2 and bpffs',
)

async function until<T>(what: string, fn: () => T | undefined, ms = 5000): Promise<T> {
  const end = Date.now() + ms
  for (;;) {
    const v = fn()
    if (v !== undefined) return v
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await sleep(20)
  }
}

t.test('open and close records of managed connections, none for unmanaged ones', { skip }, async (t) => {
  const h = await meshHarness(t)
  const server = await exchangeServer('127.0.41.11', 18041, 5000)
  t.teardown(() => server.close())
  h.writeMesh(
    meshYaml(
      [{ name: 'tel-backend', ip: '127.0.41.11', services: { 'tel-svc': { 80: 18041 } } }],
      [{ name: 'tel-svc', vips: ['127.10.41.1'], ports: { 80: 18041 } }],
    ),
  )
  const daemon = await h.start()
  t.ok(daemon.telemetry, 'telemetry is on by default')
  const records: ConnectionRecord[] = []
  let lostReported = 0
  daemon.telemetry!.addSink({ record: (r) => records.push(r), lost: (n) => (lostReported += n) })
  const byPort = (port: number, event: 'open' | 'close') =>
    records.find((r) => r.src.port === port && r.event === event)

  const c = await exchangeFrom({ cgroupPath: h.cgroup }, '127.10.41.1', 80, 3000)
  t.equal(c.received, 5000, 'the client got the reply')
  const open = await until('the open record', () => byPort(c.localPort, 'open'))
  const close = await until('the close record', () => byPort(c.localPort, 'close'))
  for (const r of [open, close]) {
    t.equal(r.direction, 'outbound', `${r.event}: outbound`)
    t.same(r.src, { ip: '127.0.0.1', port: c.localPort }, `${r.event}: src is the client's socket`)
    t.same(r.dst, { ip: '127.0.41.11', port: 18041 }, `${r.event}: dst is the backend actually connected`)
    t.same(r.originalDst, { ip: '127.10.41.1', port: 80 }, `${r.event}: originalDst is the VIP dialled`)
    t.same(
      r.dstWorkload,
      { uid: 'c//v1/Pod/t/tel-backend', name: 'tel-backend', namespace: 't' },
      `${r.event}: dst workload`,
    )
    t.same(
      r.dstService,
      { name: 'tel-svc', namespace: 't', hostname: 'tel-svc.t.svc.cluster.local' },
      `${r.event}: dst service`,
    )
    t.equal(r.srcWorkload, undefined, `${r.event}: 127.0.0.1 is no workload`)
    t.ok(Math.abs(r.at - Date.now()) < 10_000, `${r.event}: at is wall-clock ms`)
  }
  t.equal(open.bytesSent, 0, 'open: nothing sent yet')
  t.equal(open.bytesReceived, 0, 'open: nothing received yet')
  t.equal(open.durationMs, 0, 'open: no duration')
  t.equal(close.bytesSent, c.sent, `close: bytesSent = what the client sent (${c.sent})`)
  t.equal(close.bytesReceived, c.received, `close: bytesReceived = what the client received (${c.received})`)
  t.ok(close.durationMs > 0 && close.durationMs < 10_000, `close: duration ${close.durationMs} ms`)
  t.ok(close.srttUs > 0, `close: srtt ${close.srttUs} µs`)
  t.ok(close.minRttUs > 0 && close.minRttUs <= close.srttUs * 8, `close: min_rtt ${close.minRttUs} µs`)
  t.equal(close.retransmits, 0, 'close: no retransmissions on loopback')
  t.equal(close.packetLoss, 0, 'close: no loss on loopback')
  t.equal(records.filter((r) => r.src.port === c.localPort).length, 2, 'exactly one open and one close')

  // Outside the cgroup: the connect is not rewritten and nothing is reported.
  const before = records.length
  const outside = await exchangeFrom({}, '127.0.41.11', 18041, 100)
  t.equal(outside.received, 5000, 'the unmanaged client reached the backend')
  await sleep(300)
  daemon.telemetry!.drain()
  t.equal(records.length, before, 'an unmanaged process produces no record')
  t.notOk(
    records.some((r) => r.src.port === outside.localPort || r.dst.port === outside.localPort),
    'none for its port',
  )

  // Inbound: a listener inside the cgroup accepts a connection from outside.
  const listener = spawn(
    'sh',
    [
      '-c',
      'echo $$ > "$0/cgroup.procs" && exec "$@"',
      h.cgroup,
      process.execPath,
      '-e',
      `require('node:net').createServer((s) => { s.on('data', () => {}); s.on('end', () => s.end(Buffer.alloc(700))) }).listen(18042, '127.0.41.21', () => console.log('listening'))`,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  )
  const listenerExit = new Promise((resolve) => listener.once('exit', resolve))
  // Before the harness removes the cgroup (a cgroup with a process in it cannot be removed).
  const stopListener = async () => {
    listener.kill()
    await listenerExit
  }
  t.teardown(stopListener)
  await new Promise((resolve) => listener.stdout.once('data', resolve))
  const inbound = await exchangeFrom({}, '127.0.41.21', 18042, 1234)
  const inClose = await until('the inbound close record', () =>
    records.find((r) => r.event === 'close' && r.direction === 'inbound' && r.dst.port === inbound.localPort),
  )
  t.same(inClose.src, { ip: '127.0.41.21', port: 18042 }, 'inbound: src is the listener side')
  t.equal(inClose.bytesReceived, 1234, 'inbound: bytesReceived = what the outside client sent')
  t.equal(inClose.bytesSent, 700, 'inbound: bytesSent = what the listener answered')
  t.equal(inClose.originalDst, undefined, 'inbound: no rewrite')

  await stopListener()

  const stats = daemon.telemetry!.stats()
  t.equal(stats.ringBufferBytes, TELEMETRY_RINGBUF_BYTES, 'the ring buffer size is exposed')
  t.equal(stats.lost, 0, 'nothing lost at this rate')
  t.equal(lostReported, 0, 'the sinks were told of no loss')
  t.equal(stats.records, 4, 'every record counted: two connections, open and close each')
})

t.test(
  'a restart with --keep-pinned takes the sockops link over and delivers what queued meanwhile',
  { skip },
  async (t) => {
    const h = await meshHarness(t)
    const server = await exchangeServer('127.0.41.12', 18045, 300)
    t.teardown(() => server.close())
    h.writeMesh(
      meshYaml(
        [{ name: 'tel-b2', ip: '127.0.41.12', services: { 'tel-svc2': { 80: 18045 } } }],
        [{ name: 'tel-svc2', vips: ['127.10.41.2'], ports: { 80: 18045 } }],
      ),
    )
    const first = await h.start({ keepPinned: true })
    const linkPin = join(h.pinRoot, 'links', 'sockops')
    t.ok(existsSync(linkPin), 'the sockops link is pinned')
    const linkId = JSON.parse(
      execFileSync('bpftool', ['-j', 'link', 'show', 'pinned', linkPin], { encoding: 'utf8' }),
    ).id
    await first.close()
    t.ok(existsSync(linkPin), 'kept pinned after the daemon stopped')

    // No daemon runs: the program keeps reporting into the pinned ring buffer.
    const gap = await exchangeFrom({ cgroupPath: h.cgroup }, '127.10.41.2', 80, 200)
    t.equal(gap.received, 300, 'traffic flows with no daemon')

    const second = await h.start()
    const records: ConnectionRecord[] = []
    second.telemetry!.addSink({ record: (r) => records.push(r), lost: () => {} })
    const after = JSON.parse(execFileSync('bpftool', ['-j', 'link', 'show', 'pinned', linkPin], { encoding: 'utf8' }))
    t.equal(after.id, linkId, 'the same link, switched to the new program (BPF_LINK_UPDATE)')
    await until('the records queued while no daemon ran', () =>
      second.telemetry!.stats().records >= 2 ? true : undefined,
    )
    t.equal(second.telemetry!.stats().records, 2, "the gap connection's open and close reached the new daemon")
    t.equal(second.telemetry!.stats().lost, 0, 'nothing lost')
    await second.close()
    t.notOk(existsSync(linkPin), 'a plain stop detaches and unpins')
    t.notOk(existsSync(join(h.pinRoot, 'maps', 'km_telemetry')), 'and unpins the ring buffer')
  },
)

const NS_SERVER = `
const net = require('node:net')
net.createServer((s) => { s.on('data', () => {}); s.on('end', () => s.end(Buffer.alloc(900))) })
  .listen({ port: 18046, host: '::', ipv6Only: false }, () => console.log('listening'))
`

t.test('IPv6 and v4-mapped connections, in a network namespace', { skip }, async (t) => {
  const ns = tempNetns()
  t.teardown(() => ns.close())
  ns.exec(['ip', 'link', 'set', 'lo', 'up'])
  const netnsPath = `/run/netns/${ns.name}`
  const server = spawn('nsenter', [`--net=${netnsPath}`, process.execPath, '-e', NS_SERVER], {
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  const serverGone = new Promise((resolve) => server.once('exit', resolve))
  t.teardown(async () => {
    server.kill()
    await serverGone
  })
  await new Promise((resolve) => server.stdout.once('data', resolve))
  const h = await meshHarness(t)
  h.writeMesh(
    meshYaml(
      [
        { name: 'tel-v6', ip: '::1', services: { 'tel-svc6': { 80: 18046 } } },
        { name: 'tel-v4', ip: '127.0.0.1', services: { 'tel-svc4': { 80: 18046 } } },
      ],
      [
        { name: 'tel-svc6', vips: ['fd00:41::1'], ports: { 80: 18046 } },
        { name: 'tel-svc4', vips: ['127.10.41.3'], ports: { 80: 18046 } },
      ],
    ),
  )
  const daemon = await h.start({ netnsPath })
  const records: ConnectionRecord[] = []
  daemon.telemetry!.addSink({ record: (r) => records.push(r), lost: () => {} })
  const place = { cgroupPath: h.cgroup, netnsPath }

  const v6 = await exchangeFrom(place, 'fd00:41::1', 80, 321)
  const close6 = await until('the IPv6 close record', () =>
    records.find((r) => r.event === 'close' && r.src.port === v6.localPort),
  )
  t.same(close6.src, { ip: '::1', port: v6.localPort }, 'IPv6 src')
  t.same(close6.dst, { ip: '::1', port: 18046 }, 'IPv6 dst: the backend')
  t.same(close6.originalDst, { ip: 'fd00:41::1', port: 80 }, 'IPv6 originalDst: the VIP')
  t.equal(close6.dstWorkload?.name, 'tel-v6', 'IPv6 dst workload')
  t.equal(close6.dstService?.name, 'tel-svc6', 'IPv6 dst service')
  t.equal(close6.srcWorkload?.name, 'tel-v6', 'the client shares ::1 with the workload: src workload too')
  t.same([close6.bytesSent, close6.bytesReceived], [321, 900], 'IPv6 payload bytes')

  const mapped = await exchangeFrom(place, '::ffff:127.10.41.3', 80, 123)
  const closeM = await until('the v4-mapped close record', () =>
    records.find((r) => r.event === 'close' && r.src.port === mapped.localPort),
  )
  t.same(closeM.dst, { ip: '127.0.0.1', port: 18046 }, 'v4-mapped dst shown as IPv4')
  t.same(closeM.originalDst, { ip: '127.10.41.3', port: 80 }, 'v4-mapped originalDst shown as IPv4')
  t.equal(closeM.dstService?.name, 'tel-svc4', 'v4-mapped: the IPv4 service')
  t.same([closeM.bytesSent, closeM.bytesReceived], [123, 900], 'v4-mapped payload bytes')

  // The cgroup's processes in the host netns (not enrolled) are not reported.
  const before = records.length
  await exchangeFrom({ cgroupPath: h.cgroup }, '127.0.0.1', 1, 0).catch(() => undefined)
  await sleep(200)
  daemon.telemetry!.drain()
  t.equal(records.length, before, 'a process of the cgroup in a netns that is not enrolled: no record')
})
