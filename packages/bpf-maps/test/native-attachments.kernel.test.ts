/**
 * What the kernel reports as attached to a cgroup and what a link is attached to, on real links in a private
 * cgroup; and flock, the lock a daemon holds on its pin root.
 */
import t from 'tap'
import { closeSync, mkdtempSync, openSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { spawnSync } from 'node:child_process'
import { privilegedSkip, tempCgroup, tempPinDir } from '@kmesh-ts/testkit'
import { fileURLToPath } from 'node:url'
import { AttachType, Collection, cgroupId, cgroupPrograms, linkInfo, tryLockExclusive } from '../src/index.js'

const skip = privilegedSkip(
  'BPF_PROG_TYPE_CGROUP_SOCK_ADDR attached by BPF_LINK_CREATE (kernel >= 5.7), BPF_PROG_QUERY, a cgroup v2 mount and bpffs',
)
/** The connect object of bpf-progs (built before this package's tests, as btf-layout.test.ts reads it too). */
const connectObject = fileURLToPath(new URL('../../bpf-progs/obj/cgroup_sock.o', import.meta.url))

t.test('cgroupPrograms lists what is attached; linkInfo names the cgroup and the program', { skip }, async (t) => {
  const pins = tempPinDir()
  t.teardown(() => pins.close())
  const cg = tempCgroup()
  t.teardown(() => cg.close())
  t.same(cgroupPrograms(cg.path, AttachType.cgroupInet4Connect), [], 'a fresh cgroup has nothing attached')
  const coll = Collection.load({ objectPath: connectObject, pinRoot: pins.path })
  t.teardown(() => coll.close())
  const link = coll.program('cgroup_connect4_prog').attachCgroup(cg.path)
  t.teardown(() => link.close())
  const attached = cgroupPrograms(cg.path, AttachType.cgroupInet4Connect)
  t.equal(attached.length, 1)
  t.equal(attached[0]!.name, 'cgroup_connect4', 'the kernel name is the C name cut to 15 characters')
  t.same(cgroupPrograms(cg.path, AttachType.cgroupInet6Connect), [], 'connect6 is a different hook')
  const info = linkInfo(link)
  t.equal(info.progId, attached[0]!.id, 'the link carries the attached program')
  t.equal(info.cgroupId, cgroupId(cg.path), 'and the cgroup, by the inode of its directory')
  t.equal(info.attachType, AttachType.cgroupInet4Connect)
  link.detach()
  t.same(cgroupPrograms(cg.path, AttachType.cgroupInet4Connect), [], 'detached: nothing listed')
})

t.test(
  'tryLockExclusive: one holder at a time, across processes; released when the holder exits',
  { skip },
  async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'kmesh-lock-'))
    t.teardown(() => rmSync(dir, { recursive: true, force: true }))
    const a = openSync(dir, 'r')
    t.ok(tryLockExclusive(a), 'the first open description gets the lock')
    const b = openSync(dir, 'r')
    t.notOk(tryLockExclusive(b), 'a second description of the same directory does not')
    const other = spawnSync('flock', ['-n', dir, 'true'])
    t.equal(other.status, 1, 'nor does another process (flock(1) -n fails)')
    closeSync(a)
    t.ok(tryLockExclusive(b), 'closing the holder releases it')
    closeSync(b)
  },
)
