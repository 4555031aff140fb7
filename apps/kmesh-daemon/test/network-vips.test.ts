/**
 * The node's network decides which VIPs apply (issue 11, item 6; rules in src/processor/network.ts and the
 * README's "Networks"): only VIPs and workload addresses on the node's network or on none become frontends, an
 * address claimed on two networks resolves to the node's own, and endpoints on other networks are never backends
 * (with or without a network gateway), each reported. Also: the incremental engine equals a full recompute on
 * meshes with several networks, for a node on each of them.
 */
import t from 'tap'
import { MapWriter } from '../src/dataplane/map-writer.js'
import { emptyImage, LB_MAPS, type MapImage } from '../src/dataplane/map-image.js'
import { IdTable } from '../src/ids/id-table.js'
import {
  blankWorkload,
  serviceName,
  workloadName,
  type MeshDelta,
  type Service,
  type Workload,
} from '../src/model/index.js'
import { MeshEngine } from '../src/processor/engine.js'
import { computeIntent, type Intent } from '../src/processor/intent.js'
import { WorkloadProcessor } from '../src/processor/processor.js'
import { imageOf } from '../src/processor/records.js'
import { memoryMaps } from './support/memory-map.js'

function workload(uid: string, network: string, ip: string | undefined, extra: Partial<Workload> = {}): Workload {
  return {
    ...blankWorkload(),
    uid,
    name: uid,
    namespace: 't',
    workloadIps: ip ? [ip] : [],
    network,
    node: 'other',
    ...extra,
  }
}

function service(name: string, vips: [network: string, ip: string][], extra: Partial<Service> = {}): Service {
  return {
    name,
    namespace: 't',
    hostname: `${name}.t`,
    vips: vips.map(([network, ip]) => ({ network, ip })),
    cidrVips: [],
    ports: { 80: 8080 },
    endpoints: {},
    subjectAltNames: [],
    weightedWaypoints: [],
    canonical: false,
    visibility: 'Public',
    ...extra,
  }
}

const member = (svc: string): Partial<Workload> => ({ services: { [`t/${svc}.t`]: { 80: 8080 } } })

interface View {
  intent: Intent
  ids: IdTable
  /** frontend IP -> `svc:<name>` or `wl:<uid>` */
  frontends: Record<string, string>
  /** service name -> member uids */
  members(svc: string): string[]
  backends: string[]
}

function view(workloads: Workload[], services: Service[], network: string, nodeName?: string): View {
  const ids = new IdTable()
  const intent = computeIntent({ workloads, services, policies: [] }, ids, { network, nodeName })
  const nameOf = new Map<number, string>()
  for (const s of services) nameOf.set(ids.idOf(serviceName(s)), `svc:${s.name}`)
  for (const w of workloads) nameOf.set(ids.idOf(workloadName(w)), `wl:${w.uid}`)
  const frontends: Record<string, string> = {}
  for (const [ip, id] of intent.frontends) frontends[ip] = nameOf.get(id)!
  return {
    intent,
    ids,
    frontends,
    members: (svc) => {
      const s = intent.services.get(ids.idOf(serviceName({ namespace: 't', hostname: `${svc}.t` })))
      return [...(s?.members.keys() ?? [])].map((id) => nameOf.get(id)!.slice(3)).sort()
    },
    backends: [...intent.backends.keys()].map((id) => nameOf.get(id)!.slice(3)).sort(),
  }
}

t.test(
  "ztunnel's localhost example: the VIP on network 'remote' is not served on a node without a network",
  async (t) => {
    // examples/localhost.yaml in istio/ztunnel: one VIP on the default network, one on 'remote', both over the same
    // two local workloads.
    const workloads = [workload('a', '', '127.0.0.1', member('local')), workload('b', '', '127.0.0.2', member('local'))]
    for (const w of workloads) w.services['t/remote.t'] = { 80: 8080 }
    const services = [service('local', [['', '127.10.0.1']]), service('remote', [['remote', '127.10.0.2']])]
    const none = view(workloads, services, '')
    t.same(
      none.frontends,
      { '127.10.0.1': 'svc:local', '127.0.0.1': 'wl:a', '127.0.0.2': 'wl:b' },
      'node on no network: the remote VIP is not a frontend',
    )
    t.same(none.members('local'), ['a', 'b'], 'the local VIP balances over both backends')
    const remote = view(workloads, services, 'remote')
    t.same(
      remote.frontends,
      { '127.10.0.1': 'svc:local', '127.10.0.2': 'svc:remote', '127.0.0.1': 'wl:a', '127.0.0.2': 'wl:b' },
      "node on 'remote': its own VIP, and the network-less VIP and workloads (a mesh without networks is everywhere)",
    )
    t.same(remote.members('remote'), ['a', 'b'])
  },
)

t.test('an address claimed on several networks resolves to the one of the node', async (t) => {
  const services = [
    // the smallest key, on no network: it would win a plain tie, but the node's own network comes first
    service('a-none', [['', '127.10.0.5']]),
    service('m-net1', [['net1', '127.10.0.5']]),
    service('z-net2', [['net2', '127.10.0.5']]),
  ]
  t.same(view([], services, 'net1').frontends, { '127.10.0.5': 'svc:m-net1' }, 'node on net1')
  t.same(view([], services, 'net2').frontends, { '127.10.0.5': 'svc:z-net2' }, 'node on net2')
  t.same(view([], services, '').frontends, { '127.10.0.5': 'svc:a-none' }, 'node on no network')
  t.same(view([], services, 'net3').frontends, { '127.10.0.5': 'svc:a-none' }, 'node on net3: only the network-less')
  const v = view([], services, 'net1')
  t.same(v.intent.warnings, [], 'not a conflict: the claims are on different networks')

  const dual = [
    service('dual', [
      ['net1', '127.10.0.6'],
      ['net2', '127.10.0.7'],
    ]),
  ]
  t.same(view([], dual, 'net2').frontends, { '127.10.0.7': 'svc:dual' }, "a service's VIPs are chosen one by one")

  const workloads = [workload('w-net2', 'net2', '127.0.2.1'), workload('w-net1', 'net1', '127.0.2.1')]
  const ws = view(workloads, [], 'net1')
  t.same(ws.frontends, { '127.0.2.1': 'wl:w-net1' }, 'a pod IP reused on another network: the local pod')
  t.same(ws.backends, ['w-net1'])
  t.same(ws.intent.warnings, [])
  const same = view([workload('x', 'net1', '127.0.2.2'), workload('y', 'net1', '127.0.2.2')], [], 'net1')
  t.match(same.intent.warnings, [/address 127.0.2.2 is claimed by workloads x, y; x wins/], 'same network: a conflict')
})

t.test(
  'endpoints on another network are not backends, with or without a network gateway, and are reported',
  async (t) => {
    const gateway = {
      destination: { kind: 'address' as const, network: 'net2', ip: '192.0.2.10' },
      hboneMtlsPort: 15008,
    }
    const workloads = [
      workload('local', 'net1', '127.0.3.1', member('shop')),
      workload('none', '', '127.0.3.2', member('shop')),
      workload('via-gw', 'net2', '10.20.0.31', { ...member('shop'), networkGateway: gateway }),
      workload('gw-only', 'net2', undefined, { ...member('shop'), networkGateway: gateway }),
      workload('stranded', 'net3', '10.30.0.1', member('shop')),
      // a local workload may carry a gateway (WDS is client-agnostic): it is never used
      workload('local-gw', 'net1', '127.0.3.3', { ...member('shop'), networkGateway: gateway }),
    ]
    const v = view(workloads, [service('shop', [['net1', '127.10.0.8']])], 'net1')
    t.same(v.members('shop'), ['local', 'local-gw', 'none'], 'the local and network-less endpoints')
    t.same(v.backends, ['local', 'local-gw', 'none'], 'no backend record for the other networks')
    t.same(
      v.intent.warnings.sort(),
      [
        'endpoint gw-only of service t/shop.t is on network "net2", this node on "net1": ztunnel reaches it through its network gateway net2/192.0.2.10 (HBONE port 15008) with double HBONE, which a connect() rewrite cannot do; not used',
        'endpoint stranded of service t/shop.t is on network "net3", this node on "net1" and it has no network gateway; not used',
        'endpoint via-gw of service t/shop.t is on network "net2", this node on "net1": ztunnel reaches it through its network gateway net2/192.0.2.10 (HBONE port 15008) with double HBONE, which a connect() rewrite cannot do; not used',
      ],
      'one line per endpoint not used, naming its network and gateway',
    )
    t.same(v.frontends, {
      '127.10.0.8': 'svc:shop',
      '127.0.3.1': 'wl:local',
      '127.0.3.2': 'wl:none',
      '127.0.3.3': 'wl:local-gw',
    })

    const onNet2 = view(workloads, [service('shop', [['', '127.10.0.8']])], 'net2')
    t.same(onNet2.members('shop'), ['none', 'via-gw'], 'seen from net2 the roles swap (gw-only has no address)')
  },
)

t.test("without a workload of its own the client ranks the Network scope with the node's network", async (t) => {
  const lb = {
    routingPreferences: ['Network' as const],
    mode: 'Failover' as const,
    healthPolicy: 'OnlyHealthy' as const,
  }
  const workloads = [workload('mine', 'net1', '127.0.4.1', member('f')), workload('none', '', '127.0.4.2', member('f'))]
  const v = view(workloads, [service('f', [['', '127.10.0.9']], { loadBalancer: lb })], 'net1', 'node-x')
  const s = v.intent.services.get(v.ids.idOf(serviceName({ namespace: 't', hostname: 'f.t' })))!
  const prio = (uid: string): number | undefined => s.members.get(v.ids.idOf(workloadName({ uid })))
  t.ok(prio('mine')! < prio('none')!, `same network first (priorities ${prio('mine')} < ${prio('none')})`)
})

/** Map contents with endpoints as (service, prio) -> sorted backend values (indexes depend on history). */
function canonical(image: MapImage): Record<string, string[]> {
  const out: Record<string, string[]> = {}
  for (const m of LB_MAPS)
    out[m] = [...image[m].entries()]
      .map(([k, r]) => `${m === 'endpoint' ? k.slice(0, 16) : k}=${r.value.toString('hex')}`)
      .sort()
  return out
}

t.test('incremental changes equal a full recompute on a multi-network mesh, for a node on each network', async (t) => {
  const NETWORKS = ['', 'net1', 'net2']
  for (const nodeNetwork of NETWORKS) {
    for (let seed = 1; seed <= 6; seed++) {
      let s = seed * 7919
      const r = (): number => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32
      const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!
      const gateway = {
        destination: { kind: 'address' as const, network: 'net2', ip: '192.0.2.1' },
        hboneMtlsPort: 15008,
      }
      const ids = new IdTable()
      const maps = memoryMaps(100000)
      const writer = new MapWriter(maps, emptyImage())
      const processor = new WorkloadProcessor({ writer, ids, nodeName: 'me', network: nodeNetwork })
      const workloads = new Map<string, Workload>()
      const services = new Map<string, Service>()
      for (let step = 0; step < 30; step++) {
        const delta: MeshDelta = { upsertWorkloads: [], removeWorkloads: [], upsertServices: [], removeServices: [] }
        const x = r()
        if (x < 0.5) {
          const uid = `w${Math.floor(r() * 12)}`
          const w = workload(uid, pick(NETWORKS), `127.0.5.${Math.floor(r() * 8)}`, {
            ...member(`s${Math.floor(r() * 5)}`),
            node: r() < 0.3 ? 'me' : 'other',
            ...(r() < 0.5 ? { networkGateway: gateway } : {}),
          })
          workloads.set(uid, w)
          delta.upsertWorkloads = [w]
        } else if (x < 0.6 && workloads.size) {
          const uid = pick([...workloads.keys()])
          workloads.delete(uid)
          delta.removeWorkloads = [uid]
        } else if (x < 0.9) {
          const svc = service(`s${Math.floor(r() * 5)}`, [
            [pick(NETWORKS), `127.10.5.${Math.floor(r() * 3)}`],
            ...(r() < 0.3 ? [[pick(NETWORKS), `127.10.5.${Math.floor(r() * 3)}`] as [string, string]] : []),
          ])
          services.set(`t/${svc.hostname}`, svc)
          delta.upsertServices = [svc]
        } else if (services.size) {
          const key = pick([...services.keys()])
          services.delete(key)
          delta.removeServices = [key]
        }
        processor.applyDelta(delta)
        const want = canonical(
          imageOf(
            new MeshEngine({ ids, nodeName: 'me', network: nodeNetwork })
              .load({ workloads: [...workloads.values()], services: [...services.values()], policies: [] })
              .fullIntent(),
            writer.mirror,
          ),
        )
        const got = canonical(MapWriter.readMirror(maps))
        if (JSON.stringify(got) !== JSON.stringify(want)) {
          t.same(got, want, `node on "${nodeNetwork}", seed ${seed} step ${step}: incremental == full`)
          return
        }
      }
    }
    t.pass(`node on "${nodeNetwork}": every step equals a recompute from scratch`)
  }
})
