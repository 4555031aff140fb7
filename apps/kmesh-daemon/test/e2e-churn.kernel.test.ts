/**
 * Concurrent churn: while endpoints and a whole service are added and removed in a loop, thousands of connects
 * from the managed cgroup never reach a removed backend afterwards and never see a half-written service (which
 * would show as a refusal: frontend present, endpoints not). Addresses: VIPs 127.10.4.0/24, backends 127.0.4.0/24.
 */
import t from 'tap'
import { privilegedSkip } from '@kmesh-ts/testkit'
import { meshHarness, meshYaml, type ServiceSpec, type WorkloadSpec } from './support/mesh-harness.js'

const skip = privilegedSkip(
  'BPF_PROG_TYPE_CGROUP_SOCK_ADDR connect4/connect6 attached by BPF links (kernel >= 5.7), a cgroup v2 mount and bpffs',
)
const CONNECTS = Number(process.env.KMESH_CHURN_CONNECTS ?? 2500)

t.test('churn never exposes a half-written service or a removed backend', { skip }, async (t) => {
  const h = await meshHarness(t)
  await h.backend('A', '127.0.4.11', 18080)
  const b = await h.backend('B', '127.0.4.12', 18080)
  await h.sentinel('127.10.4.1', 80)
  await h.sentinel('127.10.4.2', 80)
  const a: WorkloadSpec = { name: 'a', ip: '127.0.4.11', services: { main: { 80: 18080 }, extra: { 80: 18080 } } }
  const bw: WorkloadSpec = { name: 'b', ip: '127.0.4.12', services: { main: { 80: 18080 }, extra: { 80: 18080 } } }
  const main: ServiceSpec = { name: 'main', vips: ['127.10.4.1'], ports: { 80: 18080 } }
  const extra: ServiceSpec = { name: 'extra', vips: ['127.10.4.2'], ports: { 80: 18080 } }
  const states = [
    meshYaml([a, bw], [main, extra]),
    meshYaml([a], [main]),
    meshYaml([a, bw], [main]),
    meshYaml([a], [main, extra]),
  ]
  h.writeMesh(states[0]!)
  await h.start()

  let stop = false
  let applied = 0
  const churn = (async () => {
    while (!stop) {
      h.writeMesh(states[applied % states.length]!)
      const r = await h.daemon!.mesh!.reload()
      if (!r.ok) throw r.error
      applied++
    }
  })()
  const started = Date.now()
  const result = await h.probe(['127.10.4.1:80', '127.10.4.2:80'], CONNECTS / 2).finally(() => {
    stop = true
  })
  await churn
  const seconds = (Date.now() - started) / 1000
  t.comment(`${CONNECTS} connects during ${applied} applied changes in ${seconds.toFixed(1)} s`)
  t.ok(applied >= 20, `the mesh changed many times during the run (${applied})`)
  t.same(
    Object.keys(result['127.10.4.1:80']!).filter((k) => k !== 'A' && k !== 'B'),
    [],
    `every connect to the stable VIP reached a backend: ${JSON.stringify(result['127.10.4.1:80'])}`,
  )
  t.same(
    Object.keys(result['127.10.4.2:80']!).filter((k) => !['A', 'B', 'untouched'].includes(k)),
    [],
    `the coming and going VIP was a whole service or absent, never half-written: ${JSON.stringify(result['127.10.4.2:80'])}`,
  )

  h.writeMesh(meshYaml([a], [main]))
  t.ok((await h.daemon!.mesh!.reload()).ok)
  const hitsBefore = b.hits
  const after = await h.probe(['127.10.4.1:80', '127.10.4.2:80'], 200)
  t.same(after['127.10.4.1:80'], { A: 200 }, 'after the last removal, B is never reached')
  t.same(after['127.10.4.2:80'], { untouched: 200 }, 'a removed service leaves its VIP untouched')
  t.equal(b.hits, hitsBefore, 'B saw no connection at all')
})
