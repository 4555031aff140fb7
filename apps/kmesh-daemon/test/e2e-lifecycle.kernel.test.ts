/**
 * The daemon as operators run it (the CLI process): a bad edit is refused with file, entry and key named while
 * the last good state stays in force; a map that is too small is an error that reaches the log, not a partial
 * state; --keep-pinned leaves traffic flowing with no daemon and a new daemon takes over; a plain stop detaches
 * and unpins. Addresses: VIPs 127.10.5.0/24, backends 127.0.5.0/24.
 */
import t from 'tap'
import { existsSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { privilegedSkip } from '@kmesh-ts/testkit'
import { spawnDaemon } from '../src/demo/daemon-process.js'
import { meshHarness, meshYaml, type WorkloadSpec } from './support/mesh-harness.js'

const skip = privilegedSkip(
  'BPF_PROG_TYPE_CGROUP_SOCK_ADDR connect4/connect6 attached by BPF links (kernel >= 5.7), a cgroup v2 mount and bpffs',
)
const w = (name: string, ip: string): WorkloadSpec => ({ name, ip, services: { web: { 80: 18080 } } })
const web = { name: 'web', vips: ['127.10.5.1'], ports: { 80: 18080 } }

t.test('a bad edit is refused and the last good state stays in force', { skip }, async (t) => {
  const h = await meshHarness(t)
  await h.backend('a', '127.0.5.11', 18080)
  await h.backend('b', '127.0.5.12', 18080)
  await h.sentinel('127.10.5.1', 80)
  h.writeMesh(meshYaml([w('a', '127.0.5.11')], [web]))
  const d = spawnDaemon(h.cliArgs())
  t.teardown(() => d.stop())
  t.match(await d.next(/mesh applied/), /reread\W+all\b/, 'the first load reads the whole file')
  t.same((await h.probe(['127.10.5.1:80'], 10))['127.10.5.1:80'], { a: 10 })

  const refused = d.next(/mesh file refused/)
  h.writeMesh(
    meshYaml([w('a', '127.0.5.11'), w('b', '127.0.5.12')], [web]).replace(
      'workloadIps: ["127.0.5.12"]',
      'workloadIPs: ["127.0.5.12"]',
    ),
  )
  await refused
  t.match(d.output(), /workloads\[1\].*workloadIPs/, 'the log names the entry and the key')
  t.match(d.output(), new RegExp(h.meshFile.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')), 'the log names the file')
  t.same(
    (await h.probe(['127.10.5.1:80'], 10))['127.10.5.1:80'],
    { a: 10 },
    'traffic still follows the last good state',
  )

  const applied = d.next(/mesh applied/)
  h.writeMesh(meshYaml([w('a', '127.0.5.11'), w('b', '127.0.5.12')], [web]))
  // The typo was refused by the full reader (its message above); the fix re-reads only the item it adds.
  t.match(await applied, /reread\W+1\b/, 'the fixed file: one item re-read, the others remembered')
  t.same(
    Object.keys((await h.probe(['127.10.5.1:80'], 40))['127.10.5.1:80']!).sort(),
    ['a', 'b'],
    'the fixed file is applied',
  )
  t.equal(await d.stop(), 0)
})

t.test(
  'a mesh past the map ceiling (--map-size-max) is refused whole, naming the map and the flag',
  { skip },
  async (t) => {
    const h = await meshHarness(t)
    await h.sentinel('127.10.5.2', 80)
    h.writeMesh(
      meshYaml([w('a', '127.0.5.21'), w('b', '127.0.5.22'), w('c', '127.0.5.23')], [{ ...web, vips: ['127.10.5.2'] }]),
    )
    const d = spawnDaemon([...h.cliArgs(), '--map-size', 'km_backend=2', '--map-size-max', 'km_backend=2'])
    t.teardown(() => d.stop())
    const line = await d.next(/applying the mesh failed/)
    t.match(line, /km_backend would need 3 entries but may grow to at most 2.*--map-size-max km_backend=N/)
    t.same(
      (await h.probe(['127.10.5.2:80'], 5))['127.10.5.2:80'],
      { untouched: 5 },
      'nothing was written: the VIP is not in the maps',
    )
  },
)

t.test(
  '--keep-pinned keeps traffic flowing without a daemon; the next daemon takes over; a plain stop unpins',
  { skip },
  async (t) => {
    const h = await meshHarness(t)
    await h.backend('a', '127.0.5.31', 18080)
    await h.backend('b', '127.0.5.32', 18080)
    await h.sentinel('127.10.5.3', 80)
    const vip = { ...web, vips: ['127.10.5.3'] }
    h.writeMesh(meshYaml([w('a', '127.0.5.31'), w('b', '127.0.5.32')], [vip]))
    const args = ['--mesh-file', h.meshFile, '--cgroup', h.cgroup, '--pin-root', h.pinRoot, '--state-dir', h.stateDir]
    const first = spawnDaemon([...args, '--keep-pinned'])
    t.teardown(() => first.stop())
    await first.next(/mesh applied/)
    t.equal(await first.stop(), 0)
    t.match(first.output(), /programs stay attached and maps pinned/)
    t.ok(existsSync(join(h.pinRoot, 'links', 'connect4')), 'the connect4 link stays pinned')
    t.same(
      Object.keys((await h.probe(['127.10.5.3:80'], 40))['127.10.5.3:80']!).sort(),
      ['a', 'b'],
      'connects are still load-balanced with no daemon running',
    )

    h.writeMesh(meshYaml([w('a', '127.0.5.31')], [vip]))
    const second = spawnDaemon(args)
    t.teardown(() => second.stop())
    const ready = await second.next(/data path ready/)
    t.match(ready, /"backend":2/, 'the second daemon starts from what the kernel holds')
    await second.next(/mesh applied/)
    t.match(second.output(), /backend \+0\/-1/, 'and writes only the difference')
    t.same((await h.probe(['127.10.5.3:80'], 20))['127.10.5.3:80'], { a: 20 })
    t.equal(await second.stop(), 0)
    t.notOk(existsSync(h.pinRoot) && readdirSync(h.pinRoot).length > 0, 'a plain stop removes every pin')
    t.same((await h.probe(['127.10.5.3:80'], 5))['127.10.5.3:80'], { untouched: 5 }, 'and detaches the programs')
  },
)

t.test('--help tells the truth; bad options name the option', async (t) => {
  const help = spawnDaemon(['--help'])
  t.equal(await help.exited(), 0)
  for (const flag of [
    '--mesh-file',
    '--cgroup',
    '--pin-root',
    '--state-dir',
    '--node',
    '--netns',
    '--map-size',
    '--keep-pinned',
    '--no-watch',
    '--log-format',
    '--log-level',
  ]) {
    t.match(help.output(), flag, `--help documents ${flag}`)
  }
  const bad = spawnDaemon(['--mesh-file', 'x', '--cgroup', 'y', '--map-size', 'km_nope=3'])
  t.equal(await bad.exited(), 2)
  t.match(bad.output(), /--map-size km_nope=3: unknown map km_nope/)
  const missing = spawnDaemon(['--cgroup', 'y'])
  t.equal(await missing.exited(), 2)
  t.match(missing.output(), /give exactly one of --mesh-file \(local mode\) and --xds-address/)
})
