/**
 * IPv6 and v4-mapped destinations, in a network namespace created for the test (its loopback is the only place
 * an IPv6 VIP and backend can live without touching the host's addresses). Also proves the manage gate: the
 * cgroup's processes in the host netns, which is not enrolled, are untouched.
 * Addresses: VIPs fd00:10::1 and 127.10.3.1, backends ::1 and 127.0.0.1 inside the netns.
 */
import t from 'tap'
import { spawn } from 'node:child_process'
import { privilegedSkip, tempNetns } from '@kmesh-ts/testkit'
import { meshHarness, meshYaml } from './support/mesh-harness.js'

const skip = privilegedSkip(
  'BPF_PROG_TYPE_CGROUP_SOCK_ADDR connect4/connect6 attached by BPF links (kernel >= 5.7), a cgroup v2 mount and bpffs, and a network namespace with IPv6',
)

const SERVER = `
import { createServer } from 'node:http'
createServer((req, res) => res.end('ns-backend:' + req.socket.localAddress)).listen({ port: 18080, host: '::', ipv6Only: false }, () => console.log('listening'))
`

t.test('IPv6 VIP, v4-mapped VIP and the netns gate', { skip }, async (t) => {
  const ns = tempNetns()
  t.teardown(() => ns.close())
  ns.exec(['ip', 'link', 'set', 'lo', 'up'])
  const netnsPath = `/run/netns/${ns.name}`
  const server = spawn('nsenter', [`--net=${netnsPath}`, process.execPath, '--input-type=module', '-e', SERVER], {
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  t.teardown(() => {
    server.kill()
  })
  await new Promise((resolve) => server.stdout.once('data', resolve))

  const h = await meshHarness(t)
  await h.sentinel('127.10.3.1', 80) // in the host netns: what an untouched connect from there reaches
  h.writeMesh(
    meshYaml(
      [
        { name: 'v6', ip: '::1', services: { svc6: { 80: 18080 }, cross46: { 80: 18080 } } },
        { name: 'v4', ip: '127.0.0.1', services: { svc4: { 80: 18080 }, cross64: { 80: 18080 } } },
      ],
      [
        { name: 'svc6', vips: ['fd00:10::1'], ports: { 80: 18080 } },
        { name: 'svc4', vips: ['127.10.3.1'], ports: { 80: 18080 } },
        { name: 'cross64', vips: ['fd00:10::2'], ports: { 80: 18080 } },
        { name: 'cross46', vips: ['127.10.3.2'], ports: { 80: 18080 } },
      ],
    ),
  )
  await h.start({ netnsPath })

  const r = await h.probe(
    [
      { host: 'fd00:10::1', port: 80 },
      { host: '::ffff:127.10.3.1', port: 80 },
      { host: '127.10.3.1', port: 80 },
      { host: 'fd00:10::1', port: 81 },
    ],
    20,
    { netnsPath },
  )
  t.same(r['fd00:10::1:80'], { 'ns-backend:::1': 20 }, 'an IPv6 VIP is rewritten to the IPv6 backend')
  t.same(
    r['::ffff:127.10.3.1:80'],
    { 'ns-backend:::ffff:127.0.0.1': 20 },
    'a v4-mapped VIP hits the IPv4 entry and stays v4-mapped',
  )
  t.same(r['127.10.3.1:80'], { 'ns-backend:::ffff:127.0.0.1': 20 }, 'the same VIP over IPv4')
  t.same(r['fd00:10::1:81'], { ECONNREFUSED: 20 }, 'an IPv6 VIP on a port the service does not serve is refused')

  const cross = await h.probe(
    [
      { host: 'fd00:10::2', port: 80 },
      { host: '127.10.3.2', port: 80 },
    ],
    10,
    { netnsPath },
  )
  t.same(
    cross['fd00:10::2:80'],
    { 'ns-backend:::ffff:127.0.0.1': 10 },
    'an IPv6 VIP with an IPv4 backend: the AF_INET6 socket goes to ::ffff:127.0.0.1',
  )
  t.same(
    cross['127.10.3.2:80'],
    { EAFNOSUPPORT: 10 },
    'an IPv4 socket cannot reach an IPv6 backend: refused with EAFNOSUPPORT, not sent to a garbage address',
  )

  const hostNetns = await h.probe(['127.10.3.1:80'], 5)
  t.same(
    hostNetns['127.10.3.1:80'],
    { untouched: 5 },
    'a process of the cgroup in a netns that is not enrolled is untouched',
  )
})
