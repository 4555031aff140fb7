/**
 * The daemon as an object (issue 10, item 5): startDaemon() -> a handle with `ready`, an idempotent close() and
 * Symbol.asyncDispose, each releasing what the start attached, in reverse order. In process, on the real kernel.
 * Addresses: VIP 127.10.9.1, backend 127.0.9.11 (unique to this file).
 */
import { existsSync } from 'node:fs'
import t from 'tap'
import { privilegedSkip } from '@kmesh-ts/testkit'
import { AttachType, cgroupPrograms } from '@kmesh-ts/bpf-maps'
import { startDaemon } from '../src/daemon.js'
import { meshHarness, meshYaml } from './support/mesh-harness.js'

const skip = privilegedSkip(
  'BPF_PROG_TYPE_CGROUP_SOCK_ADDR connect4/connect6 attached by BPF links (kernel >= 5.7), a cgroup v2 mount and bpffs',
)

t.test(
  'ready, then close() twice and asyncDispose: released once, nothing left attached or pinned',
  { skip },
  async (t) => {
    const h = await meshHarness(t)
    await h.backend('a', '127.0.9.11', 18080)
    h.writeMesh(
      meshYaml(
        [{ name: 'a', ip: '127.0.9.11', services: { s: { 80: 18080 } } }],
        [{ name: 's', vips: ['127.10.9.1'], ports: { 80: 18080 } }],
      ),
    )
    const daemon = await h.start()
    t.equal(await daemon.ready, true, 'ready resolves true once the first mesh is in the maps')
    t.equal(daemon.isReady(), true)
    t.equal(cgroupPrograms(h.cgroup, AttachType.cgroupInet4Connect).length, 1, 'the connect4 program is attached')
    const r = await h.probe(['127.10.9.1:80'], 4)
    t.same(r['127.10.9.1:80'], { a: 4 }, 'the VIP reaches the backend')
    const first = daemon.close()
    t.equal(daemon.close(), first, 'a second close() while closing is the same promise')
    await first
    await daemon[Symbol.asyncDispose]()
    t.equal(cgroupPrograms(h.cgroup, AttachType.cgroupInet4Connect).length, 0, 'detached')
    t.notOk(existsSync(h.pinRoot + '/links'), 'unpinned')
    t.ok(h.logs.filter((l) => l.includes('programs detached and maps unpinned')).length === 1, 'released once')
  },
)

t.test('options are checked before anything is touched', async (t) => {
  await t.rejects(startDaemon({ cgroup: '/nowhere' }), /exactly one of the options "meshFile" \(local mode\) and "xds"/)
})
