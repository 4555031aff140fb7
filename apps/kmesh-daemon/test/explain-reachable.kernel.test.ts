/**
 * `explain` reads only what a connect can reach (key lookups from the destination's frontend, following waypoints),
 * not every map: on a mesh with waypoints, dual-stack, several networks and weighted endpoints (the reference's
 * example C), for every frontend address of the maps and every service port, and for addresses the maps do not
 * hold, the explanation from the reachable records equals the one from the whole snapshot.
 */
import t from 'tap'
import { copyFileSync } from 'node:fs'
import { privilegedSkip } from '@kmesh-ts/testkit'
import { explain } from '@kmesh-ts/lb-model'
import { meshHarness } from './support/mesh-harness.js'
import { readPinnedSnapshot, readReachableSnapshot } from '../src/explain/snapshot.js'

const skip = privilegedSkip('bpffs pins and BPF hash maps read by key and by batch (kernel >= 5.6), a cgroup v2 mount')

t.test('the reachable snapshot explains every destination as the whole one does', { skip }, async (t) => {
  const h = await meshHarness(t)
  copyFileSync(new URL('./fixtures/mesh-file/example-c.yaml', import.meta.url), h.meshFile)
  await h.start()
  const full = readPinnedSnapshot(h.pinRoot)
  t.ok(full.frontends.length > 5 && full.services.length > 2, `a mesh of ${full.frontends.length} frontends`)
  const ports = new Set<number>([1, 80])
  for (const s of full.services) for (const p of s.ports) ports.add(p.servicePort)
  const v4 = full.frontends.map((f) => f.address).filter((a) => a.includes('.'))
  const addresses = [
    ...full.frontends.map((f) => f.address),
    ...v4.map((a) => `::ffff:${a}`), // what an AF_INET6 socket dials: the kernel folds it to the IPv4 key
    '10.255.255.1',
    'fd00:ffff::1',
    '::ffff:10.255.255.1',
  ]
  let compared = 0
  for (const address of addresses) {
    const reachable = readReachableSnapshot(h.pinRoot, address)
    for (const port of ports) {
      const a = explain(full, undefined, { address, port })
      const b = explain(reachable, undefined, { address, port })
      if (JSON.stringify(a) !== JSON.stringify(b)) t.same(b, a, `${address}:${port}`)
      compared++
    }
  }
  t.ok(compared > 20, `${compared} destinations compared, all equal`)
})
