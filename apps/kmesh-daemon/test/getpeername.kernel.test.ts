/**
 * getpeername(2) on a rewritten connect answers the VIP the application dialled, not the backend (the
 * cgroup/getpeername4 and getpeername6 hooks reading km_sockstorage): IPv4, IPv6 and v4-mapped (an AF_INET6 socket
 * dialling ::ffff:a.b.c.d), on real sockets whose peer Node reads with getpeername. Connects that were not rewritten
 * (outside the cgroup, or straight to a workload address) keep their real peer.
 * Addresses: VIP 127.10.42.1 → backend 127.0.42.11 in the host netns; in a netns of the test, VIPs fd00:42::1 and
 * 127.10.42.2 → backends ::1 and 127.0.0.1.
 */
import t from 'tap'
import { spawn } from 'node:child_process'
import { privilegedSkip, tempNetns } from '@kmesh-ts/testkit'
import { meshHarness, meshYaml } from './support/mesh-harness.js'
import { exchangeFrom, exchangeServer } from './support/tcp-exchange.js'

const skip = privilegedSkip(
  'cgroup connect4/6 and getpeername4/6 (BPF_CGROUP_INET*_GETPEERNAME, kernel >= 5.8) attached by BPF links, cgroup v2, bpffs, a network namespace with IPv6',
)

t.test('IPv4: getpeername answers the VIP dialled', { skip }, async (t) => {
  const h = await meshHarness(t)
  const server = await exchangeServer('127.0.42.11', 18043, 10)
  t.teardown(() => server.close())
  h.writeMesh(
    meshYaml(
      [{ name: 'peer-backend', ip: '127.0.42.11', services: { 'peer-svc': { 80: 18043 } } }],
      [{ name: 'peer-svc', vips: ['127.10.42.1'], ports: { 80: 18043 } }],
    ),
  )
  await h.start()

  const viaVip = await exchangeFrom({ cgroupPath: h.cgroup }, '127.10.42.1', 80, 5)
  t.equal(viaVip.received, 10, 'the rewritten connect reached the backend')
  t.same(
    { ip: viaVip.remoteAddress, port: viaVip.remotePort },
    { ip: '127.10.42.1', port: 80 },
    'getpeername: the VIP and service port, not 127.0.42.11:18043',
  )
  const direct = await exchangeFrom({ cgroupPath: h.cgroup }, '127.0.42.11', 18043, 5)
  t.same(
    { ip: direct.remoteAddress, port: direct.remotePort },
    { ip: '127.0.42.11', port: 18043 },
    'a connect to the workload address itself (not rewritten) keeps its peer',
  )
  const outside = await exchangeFrom({}, '127.0.42.11', 18043, 5)
  t.same(
    { ip: outside.remoteAddress, port: outside.remotePort },
    { ip: '127.0.42.11', port: 18043 },
    'outside the cgroup: the real peer',
  )
  t.same(server.received.slice(0, 3), [5, 5, 5], 'every client reached the one backend')
})

const NS_SERVER = `
const net = require('node:net')
net.createServer((s) => { s.on('data', () => {}); s.on('end', () => s.end('ok')) })
  .listen({ port: 18043, host: '::', ipv6Only: false }, () => console.log('listening'))
`

t.test('IPv6 and v4-mapped: getpeername answers the VIP dialled', { skip }, async (t) => {
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
        { name: 'v6', ip: '::1', services: { svc6: { 80: 18043 } } },
        { name: 'v4', ip: '127.0.0.1', services: { svc4: { 80: 18043 } } },
      ],
      [
        { name: 'svc6', vips: ['fd00:42::1'], ports: { 80: 18043 } },
        { name: 'svc4', vips: ['127.10.42.2'], ports: { 80: 18043 } },
      ],
    ),
  )
  await h.start({ netnsPath })
  const place = { cgroupPath: h.cgroup, netnsPath }

  const v6 = await exchangeFrom(place, 'fd00:42::1', 80, 5)
  t.equal(v6.received, 2, 'the IPv6 VIP reached its backend')
  t.same({ ip: v6.remoteAddress, port: v6.remotePort }, { ip: 'fd00:42::1', port: 80 }, 'IPv6: getpeername is the VIP')

  const mapped = await exchangeFrom(place, '::ffff:127.10.42.2', 80, 5)
  t.equal(mapped.received, 2, 'the v4-mapped VIP reached its backend')
  t.same(
    { ip: mapped.remoteAddress, port: mapped.remotePort },
    { ip: '::ffff:127.10.42.2', port: 80 },
    'v4-mapped: getpeername is the VIP as dialled (::ffff:127.10.42.2), not ::ffff:127.0.0.1',
  )

  const v4 = await exchangeFrom(place, '127.10.42.2', 80, 5)
  t.same({ ip: v4.remoteAddress, port: v4.remotePort }, { ip: '127.10.42.2', port: 80 }, 'IPv4 in the netns too')

  const direct6 = await exchangeFrom(place, '::1', 18043, 5)
  t.same(
    { ip: direct6.remoteAddress, port: direct6.remotePort },
    { ip: '::1', port: 18043 },
    'IPv6 to the workload address itself: its real peer',
  )
})
