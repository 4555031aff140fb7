/** Refusals of careless input: blank parts, meaningless values, unknown tags, sizes, depth, problem cap. */
import { execFileSync } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

import t from 'tap'

import {
  MAX_NAME_LENGTH,
  MAX_NESTING,
  MAX_PROBLEMS,
  MAX_SCALAR_LENGTH,
  MeshFileError,
  parseMeshFile,
} from '../src/mesh-file/index.js'
import { policy, refused, service, workload } from './mesh-file-helpers.js'

const W = 'workloads[0] (uid a)'
const S = 'services[0] (ns/a)'

function error(text: string | Uint8Array): MeshFileError {
  try {
    parseMeshFile(text, 'mesh.yaml')
  } catch (err) {
    if (err instanceof MeshFileError) return err
    throw err
  }
  throw new Error('the file was accepted')
}

t.test('blank top-level lists are refused with the explicit form; [] stays valid', async (t) => {
  for (const key of ['workloads', 'services', 'policies']) {
    for (const value of ['', ' ~', ' null', ' # nothing']) {
      t.match(refused(`${key}:${value}\n`), [
        { entry: 'top level', key, line: 1, message: new RegExp(`write \`${key}: \\[\\]\``) },
      ])
    }
    t.match(refused(`${key === 'workloads' ? 'services' : 'workloads'}: []\n${key}:\n# later\n`), [
      { key, line: 2, message: /intentionally empty mesh/ },
    ])
  }
  t.same(parseMeshFile('workloads: []\nservices: []\n', 'm.yaml').config, { workloads: [], services: [], policies: [] })
})

t.test(
  'port 0: refused as a service port and as an endpoint target; a service target 0 keeps its meaning',
  async (t) => {
    const text = [
      'workloads:',
      workload('a', '', '{"ns/a.ns.svc": {0: 8080, 80: 0}}'),
      'services:',
      service('ns', 'a', 'ports: {0: 80, 443: 0}\nendpoints: {a: {workloadUid: a, port: {80: 0}, status: Healthy}}'),
    ].join('\n')
    t.match(refused(text), [
      { entry: W, key: 'services["ns/a.ns.svc"].0', line: 6, message: /port 0 is not a port/ },
      { entry: W, key: 'services["ns/a.ns.svc"].80', line: 6, message: /target port 0 would send traffic to port 0/ },
      { entry: S, key: 'ports.0', message: /port 0 is not a port/ },
      { entry: S, key: 'endpoints.a.port.80', message: /target port 0/ },
    ])
    const ok = parseMeshFile(`services:\n${service('ns', 'a', 'ports: {80: 0}')}\n`, 'm.yaml')
    t.same(ok.config.services[0]?.ports, { 80: 0 }, "targetPort 0: each endpoint's own mapping (reference §5)")
  },
)

t.test('uid "" is refused like a missing uid', async (t) => {
  t.match(refused(`workloads:\n${workload('""')}\n`), [
    { entry: 'workloads[0] (no uid, name w)', key: 'uid', line: 2, message: /uid is "".*replace each other/ },
  ])
})

t.test('unknown YAML tags are refused by name; core and matcher tags keep working', async (t) => {
  const text = [
    'workloads:',
    workload('a', 'node: !!python/object:os.system x\nnetwork: !foo ""'),
    'services:',
    service('ns', 'a', 'hostname: !Exact a\nports: {80: !bar 8080}\nvips: !baz []'),
  ].join('\n')
  t.match(refused(text), [
    { entry: W, key: 'node', message: /unknown YAML tag !!python\/object:os.system/ },
    { entry: W, key: 'network', message: /unknown YAML tag !foo/ },
    { entry: S, key: 'hostname', message: /!Exact belongs on policy string matchers/ },
    { entry: S, key: 'ports.80', message: /unknown YAML tag !bar/ },
    { entry: S, key: 'vips', message: /unknown YAML tag !baz/ },
  ])
  t.ok(parseMeshFile(`workloads:\n${workload('a', 'node: !!str 7\ncapacity: !!int 3')}\n`, 'm.yaml'))
})

t.test('oversize: names over 253 characters, any scalar over 64 KiB, each with the limit named', async (t) => {
  const long = 'x'.repeat(MAX_NAME_LENGTH + 1)
  t.match(refused(`workloads:\n${workload('a', `name: ${long}\nhostname: ${long}`)}\n`), [
    { entry: W, key: 'name', message: /254 characters; .* at most 253/ },
    { entry: W, key: 'hostname', message: /at most 253/ },
  ])
  t.match(refused(`services:\n${service(long, 'a')}\n`), [{ key: 'namespace', message: /at most 253/ }])
  const huge = 'y'.repeat(MAX_SCALAR_LENGTH + 1)
  const p = refused(`workloads:\n${workload('a', `canonicalRevision: ${huge}`)}\n`)
  t.match(p, [
    { entry: W, key: 'canonicalRevision', line: 7, message: /65537 characters; the limit is 65536 \(64 KiB\)/ },
  ])
  t.ok(
    p.every((x) => x.message.length < 3000 && x.entry.length < 400),
    'problems do not quote the huge text',
  )
  const hugeUid = error(`workloads:\n${workload(huge)}\n`)
  t.ok(hugeUid.message.length < 10_000, 'a huge uid is clipped in entry labels')
})

t.test('invalid UTF-8 is refused with the line of the first bad byte', async (t) => {
  const good = new TextEncoder().encode(`workloads:\n${workload('a')}\n`)
  for (const bad of [[0xff], [0xc3, 0x28], [0xed, 0xa0, 0x80], [0xf0, 0x9f, 0x98]]) {
    const bytes = new Uint8Array([...good.slice(0, 40), ...bad, ...good.slice(40)])
    const line = new TextDecoder().decode(good.slice(0, 40)).split('\n').length
    const e = error(bytes)
    t.equal(e.problems.length, 1)
    t.match(
      e.problems[0],
      { file: 'mesh.yaml', entry: 'file', line, message: /invalid UTF-8: byte 0x.. at offset 40/ },
      bad.join(','),
    )
  }
})

t.test('deep nesting gives one clear problem', async (t) => {
  const cases = [
    '['.repeat(10_000),
    `workloads: ${'['.repeat(10_000)}${']'.repeat(10_000)}\n`,
    Array.from({ length: 2000 }, (_, i) => `${' '.repeat(i)}a${i}:`).join('\n'),
    `workloads:\n${'- '.repeat(500)}x\n`,
    `services: ${'{a: '.repeat(5000)}`,
  ]
  for (const text of cases) {
    const e = error(text)
    t.equal(e.problems.length, 1, text.slice(0, 20))
    t.match(e.problems[0], {
      file: 'mesh.yaml',
      entry: 'YAML syntax',
      line: Number,
      message: `nesting deeper than ${MAX_NESTING} levels`,
    })
  }
  // A deep but sane policy is fine.
  const rules = '  - - - principals: [!Exact a]\n        namespaces: [[x]]'
  t.match(refused(`policies:\n${policy('ns', 'p', '  scope: Global\n  action: Allow\n  dryRun: false', rules)}\n`), [
    { key: 'rules[0][0][0].namespaces[0]' },
  ])
})

t.test('problems are capped at 1,000 with the total counted (1.9 MB of bad entries)', async (t) => {
  const entry = (i: number): string =>
    `- uid: u${i}\n  name: w${i}\n  namespace: default\n  workloadIps: []\n  protocol: tcp\n  services: {}\n`
  const parts = ['workloads:\n']
  let n = 0
  for (let len = 0; len < 1_900_000; n++) {
    const s = entry(n)
    parts.push(s)
    len += s.length
  }
  const started = Date.now()
  const e = error(parts.join(''))
  const ms = Date.now() - started
  t.equal(e.problems.length, MAX_PROBLEMS)
  t.equal(e.total, n, `every one of the ${n} bad entries is counted`)
  t.equal(e.totalIsLowerBound, false)
  t.match(e.problems[0], { entry: 'workloads[0] (uid u0)', key: 'protocol', line: 6 })
  t.match(e.message.split('\n').at(-1), new RegExp(`${n} problems in all, the first 1000 listed`))
  t.ok(ms < 15_000, `refused in ${ms} ms`)
})

t.test('warnings are capped too, with warningsTotal', async (t) => {
  const items = Array.from({ length: 1200 }, (_, i) => workload(`u${i}`, '', `{"ns/missing${i}": {80: 80}}`)).join('\n')
  const r = parseMeshFile(`workloads:\n${items}\n`, 'm.yaml')
  t.equal(r.warnings.length, MAX_PROBLEMS)
  t.equal(r.warningsTotal, 1200)
  t.notOk('warningsTotal' in parseMeshFile(`workloads:\n${workload('a')}\n`, 'm.yaml'))
})

t.test('a large file not in block layout is refused, saying why', async (t) => {
  const items = Array.from(
    { length: 30_000 },
    (_, i) => `{uid: u${i}, name: w, namespace: default, workloadIps: [], services: {}}`,
  )
  const e = error(`{workloads: [${items.join(', ')}]}\n`)
  t.match(e.problems, [
    {
      entry: 'file',
      line: 1,
      message: /above 2 MiB a mesh file is read entry by entry, which needs block style without anchors/,
    },
  ])
})

t.test('a 20 MB file of bad entries is refused in seconds with bounded memory (child process)', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'kmesh-meshfile-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const path = join(dir, 'big.yaml')
  const entry = (i: number): string =>
    `  - uid: cluster1//v1/Pod/default/w${i}\n    name: w${i}\n    namespace: default\n` +
    `    workloadIps: ["10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}"]\n    protocol: hbone\n    services: {}\n`
  const parts = ['workloads:\n']
  for (let len = 0, i = 0; len < 20_000_000; i++) {
    const s = entry(i)
    parts.push(s)
    len += s.length
  }
  await writeFile(path, parts.join(''))
  const script = fileURLToPath(new URL('./fixtures/mesh-file/measure.ts', import.meta.url))
  const out = execFileSync(process.execPath, [...process.execArgv, script, path], {
    encoding: 'utf8',
    timeout: 120_000,
  })
  const m = JSON.parse(out.trim().split('\n').at(-1) as string) as {
    bytes: number
    ms: number
    rssBeforeMB: number
    maxRssMB: number
    kept: number
    total: number
  }
  t.comment(JSON.stringify(m))
  t.ok(m.bytes >= 20_000_000)
  t.equal(m.kept, MAX_PROBLEMS)
  t.ok(m.total >= MAX_PROBLEMS)
  t.ok(m.ms < 10_000, `refused in ${m.ms} ms (bound 10 s)`)
  t.ok(
    m.maxRssMB - m.rssBeforeMB < 100,
    `RSS grew ${m.maxRssMB - m.rssBeforeMB} MB parsing ${Math.round(m.bytes / 1e6)} MB (bound 100 MB, 5x the file)`,
  )
})
