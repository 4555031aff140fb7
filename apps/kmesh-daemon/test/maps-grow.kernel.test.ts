/**
 * Maps that grow online (issue 13): the daemon starts with tiny maps (--map-size as a floor), the mesh grows past
 * three successive sizes, and each time the maps are rebuilt bigger, filled and swapped in under the running
 * programs (BPF_LINK_UPDATE) while a client in the cgroup connects to a VIP in a loop: no connect may fail and every
 * one must reach a backend of the mesh. Past the ceiling (--map-size-max) a change is refused with the flag named,
 * and the last good state stays.
 */
import t from 'tap'
import { join } from 'node:path'
import { BpfMap } from '@kmesh-ts/bpf-maps'
import { privilegedSkip } from '@kmesh-ts/testkit'
import { startConnectLoop } from './support/connect-loop.js'
import { meshHarness, meshYaml, type ServiceSpec, type WorkloadSpec } from './support/mesh-harness.js'

const skip = privilegedSkip(
  'cgroup connect4 programs through BPF links and BPF_LINK_UPDATE (kernel >= 5.7), bpffs pins and rename in bpffs, batch map operations (5.6), a cgroup v2 mount',
)

const VIP = '127.32.0.1'
const BACKENDS = ['127.0.32.1', '127.0.32.2']
const PORT = 18132

/** The served service plus `extra` services of one workload each (no server behind them: they only fill maps). */
function mesh(extra: number): string {
  const workloads: WorkloadSpec[] = BACKENDS.map((ip, i) => ({ name: `b${i}`, ip, services: { svc: { 80: PORT } } }))
  const services: ServiceSpec[] = [{ name: 'svc', vips: [VIP], ports: { 80: PORT } }]
  for (let i = 0; i < extra; i++) {
    workloads.push({ name: `x${i}`, ip: `127.1.${i >> 8}.${i & 255}`, services: { [`s${i}`]: { 80: 8080 } } })
    services.push({ name: `s${i}`, vips: [`127.33.${i >> 8}.${i & 255}`], ports: { 80: 8080 } })
  }
  return meshYaml(workloads, services)
}

t.test('the mesh grows past three map sizes under a connect loop: no failed connect', { skip }, async (t) => {
  const h = await meshHarness(t)
  for (const [i, ip] of BACKENDS.entries()) await h.backend(`backend-${i}`, ip, PORT)
  h.writeMesh(mesh(0))
  const floor = { km_frontend: 4, km_service: 2, km_endpoint: 4, km_backend: 4 }
  const daemon = await h.start({ mapSizes: floor, mapSizeMax: { km_backend: 1000 } })
  const backendSize = () => {
    using m = BpfMap.openPinned(join(h.pinRoot, 'maps', 'km_backend'))
    return m.spec.maxEntries
  }
  t.equal(backendSize(), 4, 'km_backend starts at its floor')

  const loop = await startConnectLoop(t, h.cgroup, VIP)
  const pause = (ms: number) => new Promise((r) => setTimeout(r, ms))

  const sizes = [backendSize()]
  for (const extra of [10, 40, 160]) {
    await pause(300)
    h.writeMesh(mesh(extra))
    await daemon.reload()
    t.ok(daemon.mesh?.status().lastRefusal === undefined, `${extra} extra services applied`)
    sizes.push(backendSize())
  }
  await pause(300)
  t.comment(`km_backend capacity: ${sizes.join(' -> ')}`)
  t.ok(
    sizes.every((s, i) => i === 0 || s > (sizes[i - 1] as number)),
    `km_backend grew at every step (${sizes.join(' -> ')})`,
  )
  const grown = h.logs.filter((l) => l.includes('maps grown online'))
  t.ok(grown.length >= 3, `the maps were grown online ${grown.length} times`)

  // Past the ceiling: refused, naming the flag; the last good state stays.
  h.writeMesh(mesh(1200))
  await daemon.reload()
  const refusal = daemon.mesh?.status().lastRefusal
  t.match(
    refusal?.reason,
    /km_backend would need \d+ entries but may grow to at most 1000.*--map-size-max km_backend=N/,
  )
  await pause(300)

  const summary = await loop.stop()
  t.comment(`${summary.total} connects in ${summary.seconds.toFixed(1)} s: ${JSON.stringify(summary.tally)}`)
  t.ok(summary.total / summary.seconds >= 100, 'at least 100 connects/s')
  t.same(
    Object.keys(summary.tally).filter((who) => !who.startsWith('backend-')),
    [],
    'no connect failed or reached anything but a backend of the mesh',
  )
})
