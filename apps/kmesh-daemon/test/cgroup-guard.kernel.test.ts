/**
 * Which cgroups a daemon attaches to: the real cgroup v2 root is refused (and the test proves nothing was
 * attached there), a cgroup v1 directory and a plain directory are refused by name, and what
 * --allow-root-cgroup permits is tried on a child cgroup standing in for the root.
 */
import t from 'tap'
import { execFileSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, rmdirSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { AttachType, cgroupPrograms } from '@kmesh-ts/bpf-maps'
import { cgroup2Mount, privilegedSkip } from '@kmesh-ts/testkit'
import { spawnDaemon } from '../src/demo/daemon-process.js'
import { checkCgroup, CgroupRefusedError } from '../src/dataplane/cgroup-guard.js'
import { meshHarness, meshYaml } from './support/mesh-harness.js'

const skip = privilegedSkip(
  'BPF_PROG_TYPE_CGROUP_SOCK_ADDR connect4/connect6 attached by BPF links (kernel >= 5.7), a cgroup v2 mount and bpffs (and cgroup v1 mounts for the refusal)',
)

function attachedAt(dir: string): string {
  return JSON.stringify(
    [AttachType.cgroupInet4Connect, AttachType.cgroupInet6Connect].map((type) =>
      cgroupPrograms(dir, type).map((p) => p.id),
    ),
  )
}

t.test('the real cgroup v2 root is refused, and nothing is attached there', { skip }, async (t) => {
  const h = await meshHarness(t)
  h.writeMesh('workloads: []\nservices: []\n')
  const root = cgroup2Mount()!
  const before = attachedAt(root)
  const d = spawnDaemon([
    '--mesh-file',
    h.meshFile,
    '--cgroup',
    root,
    '--pin-root',
    h.pinRoot,
    '--state-dir',
    h.stateDir,
  ])
  t.equal(await d.exited(), 1)
  t.match(d.output(), new RegExp(`--cgroup ${root} is the cgroup v2 root.*--allow-root-cgroup`))
  const after = attachedAt(root)
  if (after !== before)
    throw new Error(`SOMETHING WAS ATTACHED TO THE REAL ROOT CGROUP ${root}: before ${before}, after ${after}`)
  t.equal(after, before, 'the programs on the root cgroup are exactly those before the refused start')
})

t.test('a cgroup v1 directory and a plain directory are refused by name', { skip }, async (t) => {
  // A cgroup v1 hierarchy of our own: a named one with no controllers, so nothing on the host is affected.
  const v1 = mkdtempSync(join(tmpdir(), 'kmesh-v1-'))
  t.teardown(() => rmSync(v1, { recursive: true, force: true }))
  let mounted = false
  try {
    execFileSync('mount', ['-t', 'cgroup', '-o', `none,name=kmeshtest${process.pid}`, 'cgroup', v1])
    mounted = true
  } catch (err) {
    // Fall back to any cgroup v1 mount the host has (hybrid hosts); otherwise this kernel has no cgroup v1.
    const line = readFileSync('/proc/mounts', 'utf8')
      .split('\n')
      .find((l) => l.split(' ')[2] === 'cgroup')
    if (!line) throw new Error(`cannot mount a cgroup v1 hierarchy and the host has none: ${(err as Error).message}`)
  }
  const v1Dir = mounted
    ? join(v1, 'child')
    : readFileSync('/proc/mounts', 'utf8')
        .split('\n')
        .find((l) => l.split(' ')[2] === 'cgroup')!
        .split(' ')[1]!
  if (mounted) {
    mkdirSync(v1Dir)
    t.teardown(() => {
      rmdirSync(v1Dir)
      execFileSync('umount', [v1])
    })
  }
  const e = t.throws(() =>
    checkCgroup({ cgroupPath: v1Dir, pinRoot: '/nonexistent', allowRoot: false, force: false }),
  ) as Error
  t.type(e, CgroupRefusedError)
  t.match(e.message, new RegExp(`--cgroup ${v1Dir} is in a cgroup v1 hierarchy; kmesh-ts attaches to cgroup v2 only`))
  const plain = mkdtempSync(join(tmpdir(), 'kmesh-plain-'))
  t.teardown(() => rmSync(plain, { recursive: true, force: true }))
  t.throws(
    () => checkCgroup({ cgroupPath: plain, pinRoot: '/nonexistent', allowRoot: false, force: false }),
    new RegExp(`--cgroup ${plain} is not a cgroup v2 directory`),
  )
  t.throws(
    () => checkCgroup({ cgroupPath: join(plain, 'missing'), pinRoot: '/nonexistent', allowRoot: false, force: false }),
    /no such directory/,
  )
})

t.test(
  '--allow-root-cgroup: a child cgroup standing in for the root is refused without it and served with it',
  { skip },
  async (t) => {
    const h = await meshHarness(t)
    await h.backend('a', '127.0.9.101', 18080)
    await h.sentinel('127.10.9.10', 80)
    h.writeMesh(
      meshYaml(
        [{ name: 'a', ip: '127.0.9.101', services: { web: { 80: 18080 } } }],
        [{ name: 'web', vips: ['127.10.9.10'], ports: { 80: 18080 } }],
      ),
    )
    await t.rejects(h.start({ cgroup2Roots: [h.cgroup] }), /is the cgroup v2 root/)
    t.equal(attachedAt(h.cgroup), '[[],[]]', 'the refused start attached nothing')
    await h.start({ cgroup2Roots: [h.cgroup], allowRootCgroup: true })
    t.same((await h.probe(['127.10.9.10:80'], 5))['127.10.9.10:80'], { a: 5 }, 'allowed: the stand-in root is served')
  },
)
