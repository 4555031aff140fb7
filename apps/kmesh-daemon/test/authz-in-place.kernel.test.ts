/**
 * A workload change the installed authorization set already decides is applied in place — only the changed
 * addresses' source identities, no new generation (AuthzProcessor's in-place path, AuthzMaps.updateSources) —
 * and the kernel then decides exactly as the model over the mesh as it is now. A random walk of workload
 * changes (remote and local workloads, known and new identities, shared addresses, batches, removals, policy
 * changes) against a loaded xdp_authz.o: after every step each source address is probed with a SYN through
 * BPF_PROG_TEST_RUN and compared with @kmesh-ts/authz's evaluate(), and km_authz_srcid must hold exactly the
 * mesh's addresses under the active generation and nothing under the other. Seeded: KMESH_AUTHZ_SEED=<n>.
 */
import t from 'tap'
import { clause, evaluate, type Identity, match, policy as makePolicy, rule } from '@kmesh-ts/authz'
import { authzAddrKey, authzIdentKey, authzPortKey, authzSrcKey } from '@kmesh-ts/bpf-maps/codecs'
import { AUTHZ_MAX_NODES } from '@kmesh-ts/kernel-abi'
import { AuthzMaps } from '@kmesh-ts/authz-compiler/kernel'
import { LINUX_SYN_OPTIONS, TCP, tcpFrame } from '@kmesh-ts/authz-compiler/testing'
import { Collection } from '@kmesh-ts/bpf-maps'
import { objectPath, programs } from '@kmesh-ts/bpf-progs'
import { formatIp, parseIp } from '@kmesh-ts/ip'
import { privilegedSkip, seededRandom } from '@kmesh-ts/testkit'
import type { Authorization, Match } from '@kmesh-ts/xds-client'
import { AuthzProcessor } from '../src/processor/authz.js'
import { blankWorkload, type Workload } from '../src/model/index.js'

const XDP_PASS = 2
const XDP_TX = 3
const STEPS = Number(process.env.KMESH_AUTHZ_STEPS ?? 400)
const NODE = 'node-a'

const { seed, random, pick, chance } = seededRandom('KMESH_AUTHZ_SEED')

/** A policy whose rules are one match each. */
const policy = (name: string, namespace: string, scope: 0 | 1 | 2, action: 0 | 1, matches: Match[]): Authorization =>
  makePolicy({ name, namespace, scope, action, rules: matches.map((m) => rule(clause(m))) })
// Every rule tests the source's identity, so a wrong or stale identity entry changes a verdict.
const POLICIES_BASE: Authorization[] = [
  policy('allow-front', 'app', 1, 0, [
    match({ principals: [{ exact: 'spiffe://cluster.local/ns/front/sa/web' }] }),
    match({ namespaces: [{ exact: 'ops' }] }),
  ]),
  policy('deny-bad', 'istio-system', 0, 1, [
    match({ serviceAccounts: [{ namespace: 'bad', serviceAccount: 'evil' }] }),
    match({ principals: [{ prefix: 'td.other/' }] }),
    match({
      destinationPorts: [80],
      namespaces: [{ exact: 'misc' }],
      sourceIps: [{ address: parseIp('10.60.0.0'), length: 28 }],
    }),
  ]),
]
// Listed by some workloads on this node; its destination test makes their diagrams differ by address.
const LISTED = policy('allow-listed', 'app', 2, 0, [
  match({
    destinationIps: [{ address: parseIp('10.50.1.0'), length: 29 }],
    destinationPorts: [80],
    sourceIps: [{ address: parseIp('10.60.0.0'), length: 29 }],
  }),
  match({
    destinationIps: [{ address: parseIp('10.50.1.8'), length: 29 }],
    serviceAccounts: [{ namespace: 'x', serviceAccount: 'y' }],
  }),
])
const POLICIES = [...POLICIES_BASE, LISTED]
const EXTRA_POLICY = policy('allow-misc', 'app', 1, 0, [match({ namespaces: [{ exact: 'misc' }] })])

/** [trustDomain, namespace, serviceAccount] as a workload carries them ('' takes ztunnel's default). */
const IDENTITIES: Array<[string, string, string]> = [
  ['cluster.local', 'front', 'web'],
  ['', 'ops', ''],
  ['cluster.local', 'bad', 'evil'],
  ['td.other', 'x', 'y'],
  ['cluster.local', 'misc', 'sa-z'],
]
const POOL = [
  ...Array.from({ length: 30 }, (_, i) => `10.60.0.${i + 1}`),
  ...Array.from({ length: 8 }, (_, i) => `fd00:60::${i + 1}`),
]
const STRANGERS = ['10.61.0.1', 'fd00:61::1']
const LOCAL_ADDRESSES = ['10.50.0.1', '10.50.0.2', 'fd00:50::1']
/** Where workloads on this node move to. */
const LOCAL_POOL = Array.from({ length: 20 }, (_, i) => `10.50.1.${i + 1}`)

function workload(uid: string, node: string, identity: [string, string, string], ips: string[]): Workload {
  const [trustDomain, namespace, serviceAccount] = identity
  return {
    ...blankWorkload(),
    uid,
    name: uid,
    namespace,
    workloadIps: ips,
    trustDomain,
    serviceAccount,
    clusterId: 'cluster1',
    node,
  }
}

const identityOf = (w: Workload): Identity => ({
  trustDomain: w.trustDomain || 'cluster.local',
  namespace: w.namespace,
  serviceAccount: w.serviceAccount || 'default',
})

t.test(
  `in-place workload changes decide as the model (${STEPS} random steps)`,
  { skip: privilegedSkip('BPF_PROG_TEST_RUN of XDP programs, LPM tries, per-CPU arrays') },
  async (t) => {
    t.comment(`seed ${seed} (replay: KMESH_AUTHZ_SEED=${seed})`)
    const coll = Collection.load({ objectPath: objectPath('xdp_authz'), pinMaps: false })
    t.teardown(() => coll.close())
    const maps = AuthzMaps.fromCollection(coll)
    const prog = coll.program(programs.xdpAuthz.name)
    const authz = new AuthzProcessor(maps, { nodeName: NODE })

    // The mesh as the test holds it, in the processor's order (a later holder of an address gives its identity).
    const mesh = new Map<string, Workload>()
    let policies = [...POLICIES]
    let freshIdentities = 0
    const local = (i: number) => ({
      ...workload(`local-${i}`, NODE, ['cluster.local', 'app', `srv-${i}`], [LOCAL_ADDRESSES[i] as string]),
      authorizationPolicies: i === 1 ? [] : ['app/allow-listed'],
    })
    const remoteIps = () => (chance(0.25) ? [pick(POOL), pick(POOL)] : [pick(POOL)])
    const remote = (uid: string) => {
      const identity = chance(0.03) ? (['cluster.local', `new-${++freshIdentities}`, 'sa'] as const) : pick(IDENTITIES)
      return workload(uid, chance(0.8) ? 'node-b' : '', [...identity], remoteIps())
    }
    const initial = [local(0), local(2), ...Array.from({ length: 12 }, (_, i) => remote(`remote-${i}`))]
    for (const w of initial) mesh.set(w.uid, w)
    authz.commit(authz.prepare({ policies, workloads: initial }))

    let inPlace = 0
    let inPlaceOnNode = 0
    let full = 0
    let probes = 0
    let wrong = 0
    let sharedRoots = 0
    const apply = (upserts: Workload[], removes: string[]) => {
      for (const w of upserts) mesh.set(w.uid, w)
      for (const uid of removes) mesh.delete(uid)
      const before = authz.status().sourceUpdates ?? 0
      const rootsBefore = authz.status().rootUpdates ?? 0
      const generation = authz.status().generation
      const problem = authz.workloadsChanged({ upsertWorkloads: upserts, removeWorkloads: removes })
      t.equal(problem, undefined, 'the set fits')
      const after = authz.status()
      if (after.generation === generation && (after.sourceUpdates ?? 0) === before + 1) {
        inPlace++
        if ((after.rootUpdates ?? 0) === rootsBefore + 1) inPlaceOnNode++
      } else full++
    }

    for (let step = 0; step < STEPS && wrong === 0; step++) {
      const r = random()
      const uid = `remote-${Math.floor(random() * 20)}`
      const what =
        r < 0.5
          ? 'upsert a remote workload'
          : r < 0.62
            ? 'remove a remote workload'
            : r < 0.7
              ? 'the same workload again'
              : r < 0.76
                ? 'a batch'
                : r < 0.86
                  ? 'a remote workload moves to this node or back'
                  : r < 0.98
                    ? 'a local workload comes, goes or moves'
                    : 'policies change'
      if (what === 'upsert a remote workload') apply([remote(uid)], [])
      else if (what === 'remove a remote workload') apply([], [uid])
      else if (what === 'the same workload again') {
        // Its health flips (nothing to change), or its identity changes on the same addresses.
        const w = mesh.get(uid)
        const [trustDomain, namespace, serviceAccount] = pick(IDENTITIES)
        if (w && chance(0.5)) apply([{ ...w, status: w.status === 'Healthy' ? 'Unhealthy' : 'Healthy' }], [])
        else if (w) apply([{ ...w, trustDomain, namespace, serviceAccount }], [])
      } else if (what === 'a batch') {
        const other = `remote-${Math.floor(random() * 20)}`
        apply([remote(uid), remote(`remote-${Math.floor(random() * 20)}`)], other === uid ? [] : [other])
      } else if (what === 'a remote workload moves to this node or back') {
        const w = mesh.get(uid)
        // Arriving, it sometimes takes the address of a workload on this node (an IP reused while the old pod lingers).
        const ips = chance(0.25) ? [pick(LOCAL_ADDRESSES)] : (w?.workloadIps ?? [])
        if (w) apply([{ ...w, node: w.node === NODE ? 'node-b' : NODE, namespace: 'app', workloadIps: ips }], [])
      } else if (what === 'a local workload comes, goes or moves') {
        const i = Math.floor(random() * 3)
        const w = mesh.get(`local-${i}`)
        if (!w) apply([local(i)], [])
        else if (chance(0.4)) apply([], [w.uid])
        else apply([{ ...w, workloadIps: [chance(0.2) ? (LOCAL_ADDRESSES[i] as string) : pick(LOCAL_POOL)] }], [])
      } else {
        policies = policies.includes(EXTRA_POLICY) ? [...POLICIES] : [...POLICIES, EXTRA_POLICY]
        authz.commit(authz.prepare({ policies }))
        full++
      }

      // The identity of each address as a full compile would give it: the last workload holding it.
      const holder = new Map<string, Identity>()
      for (const w of mesh.values()) for (const ip of w.workloadIps) holder.set(formatIp(parseIp(ip)), identityOf(w))
      // km_authz_srcid holds exactly the mesh's addresses, under the active generation only.
      const gen = authz.status().generation as number
      const keys = [...maps.maps.sourceIdentity.keys()].map((k) => authzAddrKey.decode(k))
      const active = keys.filter((k) => k.gen === gen).map((k) => k.address)
      if (keys.length !== active.length || active.length !== holder.size || active.some((a) => !holder.has(a))) {
        wrong++
        t.fail(
          `step ${step} (${what}): km_authz_srcid holds [${keys.map((k) => `${k.gen}:${k.address}`)}], the mesh [${[...holder.keys()]}]`,
        )
      }
      // Nothing is left of the other generation in any keyed map (the swap deletes what in-place changes added),
      // and km_authz_root holds the addresses protected here.
      const stale: string[] = []
      for (const [role, decode] of [
        ['port', (k: Buffer) => authzPortKey.decode(k).node],
        ['source', (k: Buffer) => authzSrcKey.decode(k).node],
        ['identity', (k: Buffer) => authzIdentKey.decode(k).node],
      ] as const)
        for (const k of maps.maps[role].keys()) if ((decode(k) > AUTHZ_MAX_NODES ? 1 : 0) !== gen) stale.push(role)
      const rootKeys = [...maps.maps.root.keys()].map((k) => authzAddrKey.decode(k))
      for (const k of rootKeys) if (k.gen !== gen) stale.push('root')
      const protectedHere = new Set<string>()
      for (const w of mesh.values()) if (w.node === NODE) for (const ip of w.workloadIps) protectedHere.add(ip)
      if (
        stale.length > 0 ||
        rootKeys.length !== protectedHere.size ||
        rootKeys.some((k) => !protectedHere.has(k.address))
      ) {
        wrong++
        t.fail(
          `step ${step} (${what}): stale entries [${stale}]; km_authz_root [${rootKeys.map((k) => k.address)}], protected [${[...protectedHere]}]`,
        )
      }
      // Every source against every protected address (of the workloads on this node; the later holder of a
      // shared address is the one protected there, as with identities).
      const targets = new Map<string, Workload>()
      let onNode = 0
      for (const w of mesh.values())
        if (w.node === NODE)
          for (const ip of new Set(w.workloadIps)) {
            targets.set(ip, w)
            onNode++
          }
      if (onNode > targets.size) sharedRoots++
      for (const [dst, target] of targets) {
        for (const src of [...POOL, ...LOCAL_POOL.slice(0, 4), ...STRANGERS]) {
          if (src.includes(':') !== dst.includes(':')) continue
          const decision = evaluate({
            policies,
            workload: target,
            source: { ip: src, identity: holder.get(src) },
            destination: { ip: dst, port: 80 },
          })
          const frame = tcpFrame({
            src,
            dst,
            srcPort: 40000 + probes,
            dstPort: 80,
            flags: TCP.SYN,
            seq: 1,
            tcpOptions: LINUX_SYN_OPTIONS,
          })
          const run = prog.testRun({ dataIn: Buffer.from(frame), dataOutSize: frame.length + 256 })
          probes++
          const expected = decision.verdict === 'allow' ? XDP_PASS : XDP_TX
          if (run.retval !== expected && wrong++ < 5)
            t.fail(
              `step ${step} (${what}): ${src} (${JSON.stringify(holder.get(src))}) -> ${target.uid} ${dst}: kernel ${run.retval}, model ${decision.verdict} (${decision.reason})`,
            )
        }
      }
    }
    t.equal(wrong, 0, `${probes} SYNs after ${STEPS} steps, ${wrong} wrong`)
    t.ok(inPlace >= STEPS / 5, `changes applied in place: ${inPlace}`)
    t.ok(inPlaceOnNode >= STEPS / 40, `of those, changes to workloads on this node: ${inPlaceOnNode}`)
    t.ok(full >= STEPS / 20, `changes compiled whole: ${full}`)
    t.ok(sharedRoots > 0, `steps where two workloads on this node shared an address: ${sharedRoots}`)
    t.equal(maps.totals().broken, 0, 'the walk never met a missing node')
  },
)

t.test(
  'after a refused compile, the next change is compiled whole against the store, not applied in place',
  {
    skip: privilegedSkip('BPF maps'),
  },
  async (t) => {
    const coll = Collection.load({ objectPath: objectPath('xdp_authz'), pinMaps: false })
    t.teardown(() => coll.close())
    const maps = AuthzMaps.fromCollection(coll)
    const authz = new AuthzProcessor(maps, { nodeName: NODE })
    const remote = workload('remote', 'node-b', ['cluster.local', 'front', 'web'], ['10.1.0.1'])
    const local = workload('local', NODE, ['cluster.local', 'front', 'web'], ['10.0.0.1'])
    authz.commit(authz.prepare({ policies: POLICIES_BASE, workloads: [remote, local] }))
    // more protected addresses than km_authz_root holds: refused, the set installed stays
    const huge = {
      ...local,
      serviceAccount: 'other',
      workloadIps: Array.from({ length: 65_537 }, (_, i) => `10.${200 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`),
    }
    t.match(authz.workloadsChanged({ upsertWorkloads: [huge] }), /roots/, 'refused')
    // a small change of the same workload: the store now differs from the installed set, which must not be patched
    const moved = { ...local, workloadIps: ['10.0.0.5'] }
    t.equal(authz.workloadsChanged({ upsertWorkloads: [moved] }), undefined)
    const gen = authz.status().generation
    const active = (m: 'root' | 'sourceIdentity') =>
      [...maps.maps[m].keys()]
        .map((k) => authzAddrKey.decode(k))
        .filter((k) => k.gen === gen)
        .map((k) => k.address)
        .sort()
    t.same(active('root'), ['10.0.0.5'], 'roots: the workload on this node as the store has it')
    t.same(active('sourceIdentity'), ['10.0.0.5', '10.1.0.1'], "source identities: the store's addresses only")
  },
)
