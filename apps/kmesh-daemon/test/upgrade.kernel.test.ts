/**
 * Rolling upgrades with no failed connect (issue 11 item 4): a client in the managed cgroup connects to a VIP in a
 * loop (at least 100 connects/s) while the daemon is (a) restarted, (b) replaced by one whose maps are twice as big
 * (the maps are migrated: records copied, links switched with BPF_LINK_UPDATE, pins renamed), (c) replaced by a
 * build whose object adds a map. Every connect must reach a backend of the mesh; none may fail. Then a pin root
 * carrying a newer schema is refused with a message, and nothing of it is touched.
 */
import t from 'tap'
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { BpfMap } from '@kmesh-ts/bpf-maps'
import { mapSpecs } from '@kmesh-ts/bpf-maps/codecs'
import { privilegedSkip } from '@kmesh-ts/testkit'
import { PIN_SCHEMA_VERSION, pinnedSchema } from '../src/dataplane/takeover.js'
import { startConnectLoop } from './support/connect-loop.js'
import { meshHarness, meshYaml } from './support/mesh-harness.js'

const skip = privilegedSkip(
  'cgroup connect4 programs through BPF links and BPF_LINK_UPDATE (kernel >= 5.7), bpffs pins and rename in bpffs, batch map operations (5.6), a cgroup v2 mount',
)

const VIP = '127.30.0.1'
const BACKENDS = ['127.0.0.31', '127.0.0.32']
const PORT = 18130

/** The connect object with one more map: what a new version that adds a map looks like to the loader. */
function buildObjectWithAddedMap(dir: string): string {
  const progs = fileURLToPath(new URL('../../../packages/bpf-progs/', import.meta.url))
  const source = join(dir, 'cgroup_sock_plus.c')
  writeFileSync(
    source,
    [
      `#include "${join(progs, 'src', 'cgroup_sock.c')}"`,
      '/* a map a newer version adds (unused by the programs; libbpf creates and pins it) */',
      'struct {',
      '\t__uint(type, BPF_MAP_TYPE_ARRAY);',
      '\t__type(key, __u32);',
      '\t__type(value, __u64);',
      '\t__uint(max_entries, 16);',
      '} km_added_by_upgrade SEC(".maps");',
      '',
    ].join('\n'),
  )
  const object = join(dir, 'cgroup_sock_plus.o')
  const multiarch = execFileSync('gcc', ['-print-multiarch'], { encoding: 'utf8' }).trim()
  execFileSync('clang', [
    '-target',
    'bpf',
    '-O2',
    '-g',
    `-I/usr/include/${multiarch}`,
    `-I${join(progs, 'include')}`,
    '-c',
    source,
    '-o',
    object,
  ])
  return object
}

t.test('restart, bigger maps, an added map: no failed connect; a newer schema is refused', { skip }, async (t) => {
  const h = await meshHarness(t)
  for (const [i, ip] of BACKENDS.entries()) await h.backend(`backend-${i}`, ip, PORT)
  h.writeMesh(
    meshYaml(
      BACKENDS.map((ip, i) => ({ name: `w${i}`, ip, services: { svc: { 80: PORT } } })),
      [{ name: 'svc', vips: [VIP], ports: { 80: PORT } }],
    ),
  )
  const work = mkdtempSync(join(tmpdir(), 'kmesh-upgrade-'))
  t.teardown(() => rmSync(work, { recursive: true, force: true }))
  const plusObject = buildObjectWithAddedMap(work)

  let daemon = await h.start({ keepPinned: true })
  const loop = await startConnectLoop(t, h.cgroup, VIP)
  const pause = (ms: number) => new Promise((r) => setTimeout(r, ms))
  await pause(500)

  // (a) a restart: the old daemon leaves its pins, the new one switches the links to its programs.
  await daemon.close()
  daemon = await h.start({ keepPinned: true })
  t.ok(
    h.logs.some((l) => l.includes('"tookOver":true')),
    '(a) the new daemon took over the pinned data path',
  )
  await pause(500)

  // (b) every map twice as big: migrated.
  const doubled = Object.fromEntries(Object.values(mapSpecs).map((s) => [s.name, s.defaultMaxEntries * 2]))
  await daemon.close()
  daemon = await h.start({ keepPinned: true, mapSizes: doubled })
  const migrated = h.logs.find((l) => l.includes('migrating maps to a new spec'))
  t.ok(migrated, '(b) the maps were migrated')
  for (const spec of Object.values(mapSpecs)) {
    using m = BpfMap.openPinned(join(h.pinRoot, 'maps', spec.name))
    t.equal(m.spec.maxEntries, spec.defaultMaxEntries * 2, `(b) ${spec.name} holds ${spec.defaultMaxEntries * 2} now`)
  }
  await pause(500)

  // (c) a build whose object adds a map.
  await daemon.close()
  daemon = await h.start({ keepPinned: true, mapSizes: doubled, connectObjectPath: plusObject })
  t.ok(
    (() => {
      using m = BpfMap.openPinned(join(h.pinRoot, 'maps', 'km_added_by_upgrade'))
      return m.spec.maxEntries === 16
    })(),
    '(c) the added map is created and pinned',
  )
  await pause(500)

  const summary = await loop.stop()
  t.comment(
    `${summary.total} connects in ${summary.seconds.toFixed(1)} s (${summary.perSecond.toFixed(0)}/s): ${JSON.stringify(summary.tally)}`,
  )
  t.ok(summary.perSecond >= 100, `at least 100 connects/s (${summary.perSecond.toFixed(0)}/s)`)
  const failed = Object.entries(summary.tally).filter(([who]) => !who.startsWith('backend-'))
  t.same(failed, [], 'no connect failed or reached anything but a backend of the mesh')
  t.ok(
    BACKENDS.every((_, i) => (summary.tally[`backend-${i}`] ?? 0) > 0),
    'both backends served',
  )
  t.equal(pinnedSchema(h.pinRoot), PIN_SCHEMA_VERSION, 'the pins carry our schema')

  // A pin root of a newer schema: refused, untouched.
  await daemon.close()
  {
    using schema = BpfMap.openPinned(join(h.pinRoot, 'schema'))
    const v = Buffer.alloc(4)
    v.writeUInt32LE(PIN_SCHEMA_VERSION + 1)
    schema.put(Buffer.alloc(4), v)
  }
  await t.rejects(
    h.start({ mapSizes: doubled }),
    new RegExp(`carry schema ${PIN_SCHEMA_VERSION + 1}, written by a newer kmesh-daemon.*refuses to downgrade`),
    'a downgrade is refused with a message',
  )
  t.equal(pinnedSchema(h.pinRoot), PIN_SCHEMA_VERSION + 1, 'the newer pins are left as they were')
  // Let the harness clean up: back to our schema, then a last start/stop without keepPinned removes the pins.
  {
    using schema = BpfMap.openPinned(join(h.pinRoot, 'schema'))
    const v = Buffer.alloc(4)
    v.writeUInt32LE(PIN_SCHEMA_VERSION)
    schema.put(Buffer.alloc(4), v)
  }
  daemon = await h.start({ mapSizes: doubled, connectObjectPath: plusObject })
  await daemon.close()
})
