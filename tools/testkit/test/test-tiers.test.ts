/**
 * The test tiers cannot drift (issue 10, item 8; scripts/test-tiers.mjs): every test file .taprc collects is in
 * exactly one tier; a unit-tier file reaches no privileged helper of @kmesh-ts/testkit or @kmesh-ts/vm (directly or
 * through a helper module under test/) and calls no kernel-facing API; a kernel-tier file skips through
 * privilegedSkip() naming the kernel features it needs; a vm-tier file skips through vmSkip(); and the root
 * package.json runs each tier, with `test` still running all of them.
 */
import t from 'tap'
import { existsSync, readFileSync, readdirSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
// @ts-expect-error plain JS, no types: the runner owns the tier rule, this test holds the tree to it
import { ROOT, TIERS, WORKSPACES, testFiles, tierOf } from '../../../scripts/test-tiers.mjs'

const root = ROOT as string
/** This file names the helpers and calls it looks for: it is checked by the first test only. */
const SELF = relative(root, fileURLToPath(import.meta.url))
const files = testFiles() as string[]
const checked = files.filter((f) => f !== SELF)
const read = (rel: string) => readFileSync(join(root, rel), 'utf8')

/** Exported names of a module's source files (export function / const / class / let). */
function exportedNames(...srcFiles: string[]): Set<string> {
  const names = new Set<string>()
  for (const f of srcFiles) {
    for (const m of read(f).matchAll(/^export (?:async )?(?:function|const|let|class) (\w+)/gm)) names.add(m[1]!)
  }
  return names
}

// Every helper exported by the testkit's privileged.ts and resources.ts (the gate, cgroups, pins, namespaces) and by
// the VM tool is privileged, except the pure ones listed here. Pure helpers live in other testkit files (readme.ts).
const PURE = new Set(['uniqueName'])
const testkitSrc = ['tools/testkit/src/privileged.ts', 'tools/testkit/src/resources.ts']
const vmSrc = readdirSync(join(root, 'tools/vm/src'))
  .filter((f) => f.endsWith('.ts'))
  .map((f) => `tools/vm/src/${f}`)
const PRIVILEGED = new Set([...exportedNames(...testkitSrc, ...vmSrc)].filter((n) => !PURE.has(n)))
/** Module specifiers that resolve to the testkit or the VM tool. */
const HELPER_MODULE = /^(@kmesh-ts\/(testkit|vm)|.*tools\/(testkit|vm)\/(src|dist)\/.*|\.\.\/src\/index\.js)$/
/** Kernel-facing calls a unit test must not make (they need CAP_BPF / CAP_NET_ADMIN or load into the kernel). */
const KERNEL_CALLS = [
  'BpfMap.create(',
  'BpfMap.openPinned(',
  'Collection.load(',
  'XfrmClient.open(',
  '.attachCgroup(',
  '.testRun(',
]

interface Imported {
  from: string
  names: string[]
  star: boolean
}
function importsOf(source: string): Imported[] {
  const out: Imported[] = []
  for (const m of source.matchAll(/^import\s+(type\s+)?([\s\S]*?)\s+from\s+['"]([^'"]+)['"]/gm)) {
    if (m[1]) continue // type-only
    const clause = m[2]!
    const names = [...(clause.match(/\{([\s\S]*)\}/)?.[1] ?? '').split(',')]
      .map((s) => s.trim())
      .filter((s) => s && !s.startsWith('type '))
      .map((s) => s.split(/\s+as\s+/)[0]!.trim())
    out.push({ from: m[3]!, names, star: /\*\s+as\s+/.test(clause) })
  }
  return out
}

/** The file and every module it reaches through relative imports that stay inside a test/ folder. */
function testModulesOf(rel: string): string[] {
  const seen = new Set<string>()
  const visit = (file: string) => {
    if (seen.has(file)) return
    seen.add(file)
    for (const imp of importsOf(read(file))) {
      if (!imp.from.startsWith('.')) continue
      const target = relative(root, resolve(root, dirname(file), imp.from.replace(/\.js$/, '.ts')))
      if (/(^|\/)test\//.test(target) && existsSync(join(root, target))) visit(target)
    }
  }
  visit(rel)
  return [...seen]
}

t.test('the tiers and the full run see the same files, each in exactly one tier', async (t) => {
  const taprc = read('.taprc')
  const include = [...taprc.matchAll(/^\s+-\s+"([^"]*\/test\/[^"]*)"/gm)].map((m) => m[1])
  t.same(
    include,
    (WORKSPACES as string[]).map((w) => `${w}/*/test/**/*.test.ts`),
    ".taprc's include is what scripts/test-tiers.mjs walks",
  )
  t.ok(files.length > 40, `${files.length} test files found`)
  const byTier = Object.fromEntries((TIERS as string[]).map((tier) => [tier, files.filter((f) => tierOf(f) === tier)]))
  t.equal(
    Object.values(byTier).reduce((n, fs) => n + fs.length, 0),
    files.length,
    'every file is in one tier',
  )
  t.ok(byTier.unit!.length > 0 && byTier.kernel!.length > 0 && byTier.vm!.length > 0, 'no tier is empty')
  t.same(
    files.filter((f) => /\.(kernel|vm)\.(kernel|vm)\.test\.ts$|\.(unit)\.test\.ts$/.test(f)),
    [],
    'no file names two tiers (unit is the plain name)',
  )
  // Files that look like tests but that no tier (and no tap run) would pick up.
  const stray: string[] = []
  const walk = (dir: string) => {
    for (const e of readdirSync(join(root, dir), { withFileTypes: true })) {
      const rel = `${dir}/${e.name}`
      if (e.isDirectory()) {
        if (!/^(node_modules|dist|fixtures?)$/.test(e.name)) walk(rel)
      } else if (/\.(test|spec)\.[cm]?[jt]sx?$/.test(e.name) && !rel.endsWith('.test.ts')) stray.push(rel)
      else if (/\.(kernel|vm)\.ts$/.test(e.name)) stray.push(rel)
    }
  }
  for (const w of WORKSPACES as string[])
    for (const p of readdirSync(join(root, w))) if (existsSync(join(root, w, p, 'test'))) walk(`${w}/${p}/test`)
  t.same(stray, [], 'no test-like file outside the *.test.ts / *.kernel.test.ts / *.vm.test.ts names')
  t.comment(
    Object.entries(byTier)
      .map(([k, v]) => `${k} ${v.length}`)
      .join(', '),
  )
})

t.test(
  'the privileged helpers are read from the testkit and the VM tool (a broken scan would pass vacuously)',
  async (t) => {
    for (const n of [
      'privilegedSkip',
      'missingPrivilege',
      'tempCgroup',
      'tempPinDir',
      'tempNetns',
      'runNodeInCgroup',
      'ensureBpffs',
      'vmSkip',
      'runInVm',
    ]) {
      t.ok(PRIVILEGED.has(n), `${n} counts as privileged`)
    }
    t.notOk(PRIVILEGED.has('uniqueName'), 'uniqueName is pure')
    t.notOk(PRIVILEGED.has('runReadmeExample'), 'runReadmeExample (readme.ts) is pure')
    t.same(importsOf("import { a, b as c, type D } from '@kmesh-ts/testkit'\nimport type { E } from 'x'\n"), [
      { from: '@kmesh-ts/testkit', names: ['a', 'b'], star: false },
    ])
    t.ok(
      testModulesOf('apps/kmesh-daemon/test/e2e-lb.kernel.test.ts').includes(
        'apps/kmesh-daemon/test/support/mesh-harness.ts',
      ),
      'helpers under test/ are followed',
    )
  },
)

t.test('unit-tier files reach no privileged helper and make no kernel call', async (t) => {
  const bad: string[] = []
  for (const f of checked.filter((f) => tierOf(f) === 'unit')) {
    for (const mod of testModulesOf(f)) {
      const src = read(mod)
      for (const imp of importsOf(src)) {
        if (!HELPER_MODULE.test(imp.from) || (imp.from === '../src/index.js' && !mod.startsWith('tools/'))) continue
        if (imp.star) bad.push(`${f}: ${mod} imports * from ${imp.from}`)
        for (const n of imp.names.filter((n) => PRIVILEGED.has(n)))
          bad.push(`${f}: ${mod === f ? '' : `via ${mod}: `}${n} from ${imp.from}`)
      }
      for (const call of KERNEL_CALLS)
        if (src.includes(call)) bad.push(`${f}: ${mod === f ? '' : `via ${mod}: `}calls ${call}`)
    }
  }
  t.same(bad, [], 'a file that needs privileges belongs in *.kernel.test.ts (or *.vm.test.ts)')
})

t.test(
  'kernel-tier files skip through privilegedSkip naming what they need; vm-tier files through vmSkip',
  async (t) => {
    const bad: string[] = []
    for (const f of checked) {
      const src = read(f)
      const tier = tierOf(f)
      const calls = [...src.matchAll(/privilegedSkip\(([^)]*)/g)].map((m) => m[1]!.trim())
      if (tier === 'kernel') {
        if (calls.length === 0) bad.push(`${f}: a kernel-tier file that never calls privilegedSkip()`)
        for (const c of calls)
          if (c === '' || c.startsWith('(') || c.startsWith('()'))
            bad.push(`${f}: privilegedSkip(${c}) does not name the kernel features it needs`)
      }
      if (tier === 'vm' && !/vmSkip\(\)/.test(src)) bad.push(`${f}: a vm-tier file that never calls vmSkip()`)
      if (tier !== 'vm' && /\b(vmSkip|runInVm)\(/.test(src)) bad.push(`${f}: uses the VM outside the vm tier`)
    }
    t.same(bad, [])
  },
)

t.test('package.json runs each tier; `test` and scripts/test.sh still run every tier', async (t) => {
  const scripts = (JSON.parse(read('package.json')) as { scripts: Record<string, string> }).scripts
  for (const tier of TIERS as string[])
    t.match(scripts[`test:${tier}`], new RegExp(`node scripts/test-tiers\\.mjs ${tier}\\b`), `test:${tier}`)
  t.notMatch(scripts.test, /test-tiers|kernel|vm|unit/, '`test` is not narrowed to a tier')
  t.match(scripts.test, /\btap\b/)
  const testSh = read('scripts/test.sh')
  t.match(testSh, /pnpm exec tap "\$@"/, 'scripts/test.sh runs tap over .taprc (every tier)')
  t.notMatch(testSh, /test-tiers/, 'and not one tier')
  t.equal(
    fileURLToPath(new URL('../../../', import.meta.url)).replace(/\/$/, ''),
    root,
    'the runner and this test agree on the root',
  )
})
