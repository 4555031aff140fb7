// The checks across entries kept up to date with an edit (src/mesh-file/clean-index.ts) against running them over
// the whole file (cross-check.ts through item-memo's checksClean): over random sequences of edits drawn from a
// small vocabulary that makes every check fire (repeated uids, hostnames, policies, addresses and VIPs; missing
// services and policies; unattached WorkloadSelector policies; bad SANs; gateways and explicit endpoints), a
// 'clean' verdict is never given to a file the checks fault, nor 'dirty' to one they pass.
import t from 'tap'
import { CleanIndex, type EntryDelta } from '../src/mesh-file/clean-index.js'
import { checksClean } from '../src/mesh-file/item-memo.js'
import { parseMeshText } from '../src/mesh-file/parse.js'
import type { MeshConfig, Policy, Service, Workload } from '../src/model/mesh.js'

const SEED = Number(process.env['KMESH_CLEAN_INDEX_SEED'] ?? Date.now() % 1e9)

t.test(`random edits: the index's verdict is the full checks' (seed ${SEED}, KMESH_CLEAN_INDEX_SEED)`, async (t) => {
  let state = SEED >>> 0 || 1
  const rnd = (n: number): number => {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0
    return (state >>> 8) % n
  }
  const pick = <T>(xs: readonly T[]): T => xs[rnd(xs.length)]!

  const workloadItem = (): string => {
    const services = Array.from({ length: rnd(3) === 0 ? 0 : 1 + rnd(2) }, () => `"ns/s${rnd(5)}.ns": {80: 8080}`)
    const lines = [
      `- uid: u${rnd(6)}`,
      '  namespace: ns',
      `  network: "${pick(['', '', 'n1'])}"`,
      `  workloadIps: ["10.0.0.${1 + rnd(8)}"]`,
      `  networkMode: ${pick(['Standard', 'Standard', 'Standard', 'HostNetwork'])}`,
      `  services: {${[...new Set(services)].join(', ')}}`,
    ]
    if (rnd(3) === 0) lines.push(`  authorizationPolicies: ["ns/p${rnd(3)}"]`)
    if (rnd(30) === 0) lines.push('  waypoint: {destination: "ns/s0.ns", hboneMtlsPort: 15008}')
    return lines.join('\n')
  }
  const serviceItem = (): string => {
    const j = rnd(5)
    const vips = [`"/10.1.0.${1 + rnd(8)}"`]
    if (rnd(5) === 0) vips.push(rnd(2) ? vips[0]! : `"n1/10.1.0.${1 + rnd(8)}"`)
    const lines = [
      `- name: s${j}`,
      `  namespace: ${rnd(12) === 0 ? 'other' : 'ns'}`,
      `  hostname: s${j}.ns`,
      `  vips: [${vips.join(', ')}]`,
      '  ports: {80: 8080}',
    ]
    if (rnd(15) === 0) lines.push(`  subjectAltNames: ["${rnd(2) ? 'spiffe://td/ns/ns/sa/a' : 'not-a-spiffe-id'}"]`)
    if (rnd(40) === 0) lines.push('  endpoints: {"u0": {workloadUid: u0, port: {80: 8080}, status: Healthy}}')
    return lines.join('\n')
  }
  const policyItem = (): string =>
    [
      `- name: p${rnd(3)}`,
      '  namespace: ns',
      `  scope: ${pick(['Namespace', 'WorkloadSelector'])}`,
      '  action: Allow',
      '  dryRun: false',
      '  rules: []',
    ].join('\n')
  /** A resource from one item, read on its own (no checks across entries). */
  const read = <T>(section: string, item: string): T => {
    const { result, error } = parseMeshText(`${section}:\n${item}\n`, 'gen.yaml', 'auto', { crossCheck: false })
    if (!result) throw new Error(`generated item does not read: ${error?.message}\n${item}`)
    return (result.config as unknown as Record<string, T[]>)[section]![0]!
  }
  const make = {
    workloads: () => read<Workload>('workloads', workloadItem()),
    services: () => read<Service>('services', serviceItem()),
    policies: () => read<Policy>('policies', policyItem()),
  }

  const verdicts = { clean: 0, dirty: 0, unsure: 0 }
  let mismatches = 0
  for (let run = 0; run < 40; run++) {
    let config: MeshConfig = { workloads: [], services: [], policies: [] }
    const index = new CleanIndex([], [], [])
    for (let step = 0; step < 60; step++) {
      const delta: EntryDelta = {
        workloads: { removed: [], added: [] },
        services: { removed: [], added: [] },
        policies: { removed: [], added: [] },
      }
      const next: MeshConfig = {
        workloads: config.workloads.slice(),
        services: config.services.slice(),
        policies: config.policies.slice(),
      }
      for (let k = 1 + rnd(3); k > 0; k--) {
        const section = pick(['workloads', 'workloads', 'services', 'services', 'policies'] as const)
        const list = next[section] as (Workload | Service | Policy)[]
        const d = delta[section] as { removed: (Workload | Service | Policy)[]; added: (Workload | Service | Policy)[] }
        const op = rnd(3)
        if (op !== 1 && list.length > 0) {
          const [gone] = list.splice(rnd(list.length), 1)
          if (d.added.includes(gone!)) d.added.splice(d.added.indexOf(gone!), 1)
          else d.removed.push(gone!)
        }
        if (op !== 0) {
          const fresh = make[section]()
          list.splice(rnd(list.length + 1), 0, fresh)
          d.added.push(fresh)
        }
      }
      const verdict = index.apply(delta)
      verdicts[verdict]++
      const clean = checksClean(next, 'gen.yaml')
      if ((verdict === 'clean' && !clean) || (verdict === 'dirty' && clean)) {
        if (mismatches++ < 3)
          t.fail(`run ${run} step ${step}: the index says ${verdict}, the checks say ${clean ? 'clean' : 'faulty'}`, {
            delta: JSON.stringify(delta).slice(0, 3000),
            before: JSON.stringify(config).slice(0, 3000),
          })
      }
      // As the memo does: a faulty file is not kept; the index goes back to the last clean one.
      if (clean) config = next
      else index.revert(delta)
    }
  }
  t.equal(mismatches, 0, 'no verdict differs from the full checks')
  t.ok(
    verdicts.clean > 200 && verdicts.dirty > 200 && verdicts.unsure > 20,
    `verdicts: ${verdicts.clean} clean, ${verdicts.dirty} dirty, ${verdicts.unsure} unsure (then the full checks run)`,
  )
})
