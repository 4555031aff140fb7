/**
 * Every compiled object loads through this kernel's verifier, with its maps, and its programs keep the
 * names and types userspace expects. Prints the verifier's translated and JIT sizes.
 */
import t from 'tap'
import { existsSync, readdirSync } from 'node:fs'
import { privilegedSkip, tempPinDir } from '@kmesh-ts/testkit'
import { objectMaps, objectNames, objectPath, programs } from '../src/index.js'
import { loadObject, progInfo } from './bpftool.js'

const expectedType: Record<string, string> = {
  'cgroup/connect4': 'cgroup_sock_addr',
  'cgroup/connect6': 'cgroup_sock_addr',
  syscall: 'syscall',
  tc: 'sched_cls',
  xdp: 'xdp',
  'cgroup/getpeername4': 'cgroup_sock_addr',
  'cgroup/getpeername6': 'cgroup_sock_addr',
  sockops: 'sock_ops',
  sk_msg: 'sk_msg',
}

for (const name of objectNames) {
  t.test(
    `${name}.o loads through the verifier`,
    {
      skip: privilegedSkip(
        'the verifier for BPF_PROG_TYPE_CGROUP_SOCK_ADDR (kernel >= 4.17), BPF_PROG_TYPE_SYSCALL (kernel >= 5.14) and BPF_PROG_TYPE_SCHED_CLS, and bpffs',
      ),
    },
    async (t) => {
      t.ok(existsSync(objectPath(name)), `${objectPath(name)} exists (built by scripts/build.mjs)`)
      const pins = tempPinDir()
      t.teardown(() => pins.close())
      const obj = loadObject(name, pins.path)

      t.same(readdirSync(obj.maps).sort(), [...objectMaps[name]].sort(), 'every map the object declares is created')
      const expected = Object.values(programs).filter((p) => p.object === name)
      t.same(
        readdirSync(obj.progs).sort(),
        expected.map((p) => p.name).sort(),
        'programs are named as src/index.ts says',
      )
      for (const p of expected) {
        const info = progInfo(obj.prog(p.name))
        t.equal(info.type, expectedType[p.section], `${p.name} is a ${expectedType[p.section]} program`)
        t.comment(
          `${p.name}: xlated ${info.bytes_xlated} B (${info.bytes_xlated / 8} insns), jited ${info.bytes_jited} B`,
        )
      }
    },
  )
}
