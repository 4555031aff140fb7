// The one delta computation (model/delta.ts): what local mode applies and what its log line counts.
import t from 'tap'
import {
  countChanges,
  deltaBetween,
  serviceKeyOf,
  type HeldMesh,
  type MeshConfig,
  type Service,
  type Workload,
} from '../src/model/index.js'
import { parseMeshFile } from '../src/mesh-file/index.js'
import { service, workload } from './mesh-file-helpers.js'

const mesh = (yaml: string): MeshConfig => parseMeshFile(yaml, 'm.yaml').config

const held = (m: MeshConfig): HeldMesh => ({
  workloads: new Map<string, Workload>(m.workloads.map((w) => [w.uid, w])),
  services: new Map<string, Service>(m.services.map((s) => [serviceKeyOf(s), s])),
})

const before = mesh(`workloads:
${workload('a', 'workloadIps: [10.0.0.1]')}
${workload('b', 'workloadIps: [10.0.0.2]')}
services:
${service('ns', 's.ns', 'ports: {80: 8080}')}
`)

t.test('a mesh against itself is no change', async (t) => {
  const { delta, changes } = deltaBetween(held(before), before)
  t.same(delta, { upsertWorkloads: [], removeWorkloads: [], upsertServices: [], removeServices: [] })
  t.same(countChanges(changes), { services: '+0 ~0 -0', workloads: '+0 ~0 -0' })
})

t.test('added, changed and removed are told apart; only they are upserted or removed', async (t) => {
  const after = mesh(`workloads:
${workload('a', 'workloadIps: [10.0.0.1]')}
${workload('c', 'workloadIps: [10.0.0.3]')}
services:
${service('ns', 's.ns', 'ports: {80: 9090}')}
${service('ns', 't.ns')}
`)
  const { delta, changes } = deltaBetween(held(before), after)
  t.same(
    delta.upsertWorkloads?.map((w) => w.uid),
    ['c'],
  )
  t.same(delta.removeWorkloads, ['b'])
  t.same(delta.upsertServices?.map(serviceKeyOf), ['ns/s.ns', 'ns/t.ns'])
  t.same(delta.removeServices, [])
  t.same(changes, {
    workloads: { added: ['c'], changed: [], removed: ['b'] },
    services: { added: ['ns/t.ns'], changed: ['ns/s.ns'], removed: [] },
  })
  t.same(countChanges(changes), { services: '+1 ~1 -0', workloads: '+1 ~0 -1' })
})
