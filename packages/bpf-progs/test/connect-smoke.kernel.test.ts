/**
 * End-to-end smoke of cgroup_sock.o with bpftool only: attached to a private cgroup, maps filled with the
 * bytes of the bpf-maps codecs, real TCP connects from node processes inside and outside the cgroup.
 * The full e2e suite through the daemon lives with the daemon; this only proves the hooks do their steps.
 */
import t from 'tap'
import net from 'node:net'
import { privilegedSkip, runNodeInCgroup, tempCgroup, tempPinDir } from '@kmesh-ts/testkit'
import {
  backendKey,
  backendValue,
  endpointKey,
  endpointValue,
  frontendKey,
  frontendValue,
  LbPolicy,
  serviceKey,
  serviceValue,
  type Codec,
} from '@kmesh-ts/bpf-maps/codecs'
import { mapNames, programs, tailCalls } from '../src/index.js'
import { bpftool, loadObject, mapKeys, mapUpdate, progArraySet } from './bpftool.js'

const bytes = <T>(codec: Codec<T>, v: T): Uint8Array => {
  const b = new Uint8Array(codec.size)
  codec.encode(v, b, 0)
  return b
}

/** A TCP server that answers every connection with its name and closes. */
async function nameServer(host: string, port: number, name: string): Promise<net.Server> {
  const server = net.createServer((s) => s.end(name))
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(port, host, resolve))
  return server
}

interface Probe {
  host: string
  port: number
}
type Outcome = { reply: string } | { error: string }

/** Connects to each target in turn from a node process; prints what each connect got. */
const clientScript = `
import net from 'node:net'
const out = []
for (const { host, port } of JSON.parse(process.argv[1])) {
  out.push(await new Promise((resolve) => {
    const s = net.connect({ host, port })
    let data = ''
    s.setTimeout(3000, () => { s.destroy(); resolve({ error: 'timeout' }) })
    s.on('data', (d) => (data += d))
    s.on('end', () => resolve({ reply: data }))
    s.on('error', (e) => resolve({ error: e.code }))
  }))
}
console.log(JSON.stringify(out))
`
async function probeInCgroup(cgroup: string, targets: Probe[]): Promise<Outcome[]> {
  return JSON.parse(await runNodeInCgroup(cgroup, clientScript, [JSON.stringify(targets)])) as Outcome[]
}
async function probeHere(target: Probe): Promise<Outcome> {
  return new Promise((resolve) => {
    const s = net.connect(target)
    let data = ''
    s.on('data', (d) => (data += d))
    s.on('end', () => resolve({ reply: data }))
    s.on('error', (e: NodeJS.ErrnoException) => resolve({ error: e.code ?? e.message }))
  })
}

// Addresses private to this test file (loopback only).
const VIP = '127.10.201.1' // Random service 1001, port 80 -> 8080, one backend
const EMPTY_VIP = '127.10.201.2' // service 1002 with no endpoints
const WP_CLIENT_VIP = '127.10.201.3' // service 1003 whose waypoint is the waypoint service's VIP
const WP_VIP = '127.10.201.4' // waypoint service 1004: 15008 -> 15019 on its pod
const BACKEND = '127.0.201.11'
const WAYPOINT_POD = '127.0.201.12'

t.test(
  'connect4/connect6 rewrite a managed connect, refuse an empty VIP, leave others alone',
  {
    skip: privilegedSkip(
      'BPF_PROG_TYPE_CGROUP_SOCK_ADDR connect4/connect6 (kernel >= 4.17) with bpf_get_netns_cookie (kernel >= 5.7), a cgroup v2 mount, bpffs and bpftool',
    ),
  },
  async (t) => {
    const pins = tempPinDir()
    t.teardown(() => pins.close())
    const cg = tempCgroup()
    t.teardown(() => cg.close())
    const obj = loadObject('cgroup_sock', pins.path)
    for (const [attach, p] of [
      ['connect4', programs.connect4],
      ['connect6', programs.connect6],
    ] as const) {
      bpftool(['cgroup', 'attach', cg.path, attach, 'pinned', obj.prog(p.name)])
      t.teardown(() => bpftool(['cgroup', 'detach', cg.path, attach, 'pinned', obj.prog(p.name)]))
    }
    progArraySet(obj.map(tailCalls.connect4.map), tailCalls.connect4.index, obj.prog(tailCalls.connect4.program))
    progArraySet(obj.map(tailCalls.connect6.map), tailCalls.connect6.index, obj.prog(tailCalls.connect6.program))

    const servers = await Promise.all([
      nameServer(BACKEND, 8080, 'backend'),
      nameServer(WAYPOINT_POD, 15019, 'waypoint'),
      nameServer(VIP, 80, 'vip itself'),
      nameServer(EMPTY_VIP, 80, 'empty vip itself'),
    ])
    t.teardown(() => servers.forEach((s) => s.close()))

    // backend -> endpoint -> service -> frontend, the order the daemon writes in
    const m = (name: string) => obj.map(name)
    mapUpdate(
      m(mapNames.backend),
      bytes(backendKey, { backendUid: 2001 }),
      bytes(backendValue, { address: BACKEND, services: [1001] }),
    )
    mapUpdate(
      m(mapNames.backend),
      bytes(backendKey, { backendUid: 2002 }),
      bytes(backendValue, { address: WAYPOINT_POD, services: [1004] }),
    )
    mapUpdate(
      m(mapNames.endpoint),
      bytes(endpointKey, { serviceId: 1001, prio: 0, backendIndex: 1 }),
      bytes(endpointValue, { backendUid: 2001 }),
    )
    mapUpdate(
      m(mapNames.endpoint),
      bytes(endpointKey, { serviceId: 1004, prio: 0, backendIndex: 1 }),
      bytes(endpointValue, { backendUid: 2002 }),
    )
    const random = (
      count: number,
      ports: { servicePort: number; targetPort: number }[],
      waypoint?: { address: string; port: number },
    ) => bytes(serviceValue, { prioEndpointCount: [count], lbPolicy: LbPolicy.Random, ports, waypoint })
    mapUpdate(
      m(mapNames.service),
      bytes(serviceKey, { serviceId: 1001 }),
      random(1, [{ servicePort: 80, targetPort: 8080 }]),
    )
    mapUpdate(
      m(mapNames.service),
      bytes(serviceKey, { serviceId: 1002 }),
      random(0, [{ servicePort: 80, targetPort: 8080 }]),
    )
    mapUpdate(
      m(mapNames.service),
      bytes(serviceKey, { serviceId: 1003 }),
      random(0, [{ servicePort: 80, targetPort: 8080 }], { address: WP_VIP, port: 15008 }),
    )
    mapUpdate(
      m(mapNames.service),
      bytes(serviceKey, { serviceId: 1004 }),
      random(1, [{ servicePort: 15008, targetPort: 15019 }]),
    )
    for (const [address, upstreamId] of [
      [VIP, 1001],
      [EMPTY_VIP, 1002],
      [WP_CLIENT_VIP, 1003],
      [WP_VIP, 1004],
    ] as const) {
      mapUpdate(m(mapNames.frontend), bytes(frontendKey, { address }), bytes(frontendValue, { upstreamId }))
    }

    t.same(
      await probeInCgroup(cg.path, [{ host: VIP, port: 80 }]),
      [{ reply: 'vip itself' }],
      'before enrolment the network namespace is not managed: the connect is untouched',
    )

    t.same(
      await probeInCgroup(cg.path, [{ host: '0.0.0.2', port: 929 }]),
      [{ error: 'ECONNREFUSED' }],
      'the enrol control connect is refused so that nothing leaves the host',
    )
    t.equal(mapKeys(m(mapNames.manage)).length, 1, 'and the netns cookie is now a key of km_manage')

    t.same(
      await probeInCgroup(cg.path, [
        { host: VIP, port: 80 },
        { host: `::ffff:${VIP}`, port: 80 },
        { host: EMPTY_VIP, port: 80 },
        { host: VIP, port: 81 },
        { host: WP_CLIENT_VIP, port: 80 },
      ]),
      [
        { reply: 'backend' },
        { reply: 'backend' },
        { error: 'ECONNREFUSED' },
        { error: 'ECONNREFUSED' },
        { reply: 'waypoint' },
      ],
      'VIP -> backend (v4 and v4-mapped v6), no endpoint and unserved port refused, waypoint resolved by the tail call',
    )

    t.same(
      await probeHere({ host: VIP, port: 80 }),
      { reply: 'vip itself' },
      'a process outside the cgroup is untouched',
    )
    t.same(await probeHere({ host: EMPTY_VIP, port: 80 }), { reply: 'empty vip itself' }, 'even for the empty VIP')

    t.same(
      await probeInCgroup(cg.path, [
        { host: '0.0.0.2', port: 930 },
        { host: VIP, port: 80 },
      ]),
      [{ error: 'ECONNREFUSED' }, { reply: 'vip itself' }],
      'after unenrolment the connect is untouched again',
    )
    t.equal(mapKeys(m(mapNames.manage)).length, 0, 'and km_manage is empty')
  },
)
