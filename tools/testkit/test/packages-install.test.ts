/**
 * Every publishable package installs from its tarball the way a stranger would get it from the registry, and works
 * there: `pnpm pack` of the built workspace (workspace:* becomes the exact version) into a temp dir, then
 * in an empty folder outside the workspace plain `npm install` of its tarball together with the tarballs of the
 * workspace packages it depends on (as a registry would serve them; third-party dependencies from npm's cache or
 * the registry), and then, in that folder:
 * - the README's first js block, run with plain node, prints exactly `ok`;
 * - every exported subpath loads with `import()` and with CommonJS `require()` (the `default` condition; Node
 *   >= 20.19 loads our ES modules through require, which is why engines says >=20.19), with the same exports;
 * - TypeScript finds the types of every subpath with `moduleResolution: node` (typesVersions) and `nodenext`,
 *   with skipLibCheck off, so no dependency's types leak into ours unresolved;
 * and the tarball holds LICENSE, README, CHANGELOG and no tests, and its manifest has the metadata a registry
 * page needs. Unprivileged (libbpf.so.1 must be present for bpf-maps' native entry). Helpers shared with the
 * release dry run: scripts/release/packages.mjs. Slow for a unit test (3-5 minutes on a busy 2-CPU machine, mostly
 * npm installs and two tsc runs over every package's types, @kubernetes/client-node's included).
 */
import t from 'tap'
import { execFile } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, relative } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { promisify } from 'node:util'

interface Workspace {
  name: string
  version: string
  dir: string
  manifest: Manifest
}
interface Manifest {
  name: string
  license?: string
  repository?: { type?: string; url?: string; directory?: string }
  engines?: { node?: string }
  sideEffects?: boolean | string[]
  publishConfig?: { access?: string }
  main?: string
  types?: string
  typesVersions?: Record<string, Record<string, string[]>>
  exports?: Record<string, Record<string, string>>
  scripts?: Record<string, string>
  dependencies?: Record<string, string>
}
interface Packed {
  file: string
  size: number
  files: string[]
  manifest: Manifest
}
const release = (await import('../../../scripts/release/packages.mjs')) as {
  repoRoot: string
  publishablePackages(): Workspace[]
  runtimeClosure(name: string, packages: Workspace[]): string[]
  pack(pkg: Workspace, destination: string, options?: { ignoreScripts?: boolean }): Packed
  firstJsBlock(readme: string): string | undefined
  exportedSpecifiers(manifest: Manifest): string[]
}

const LICENSE_OF: Record<string, string> = { '@kmesh-ts/bpf-progs': '(Apache-2.0 AND (GPL-2.0-only OR BSD-2-Clause))' }
const tsc = join(release.repoRoot, 'node_modules', 'typescript', 'bin', 'tsc')
const typesNode = '@types/node@^20.19.0'
/** npm as a stranger runs it: none of pnpm's or the workspace's npm_config_* settings. */
const strangerEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(npm_|pnpm_)/i.test(k)))

const execFileAsync = promisify(execFile)

/** Runs a command to its end (asynchronously: packages install two at a time); the error has its output. */
async function run(cmd: string, args: string[], cwd: string): Promise<string> {
  try {
    const { stdout } = await execFileAsync(cmd, args, { cwd, env: strangerEnv, encoding: 'utf8', maxBuffer: 64 << 20 })
    return stdout
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string }
    throw new Error(`${cmd} ${args.join(' ')} (in ${cwd}) failed: ${e.stderr || e.stdout || e.message}`)
  }
}

const packages = release.publishablePackages()
const tarballs = mkdtempSync(join(tmpdir(), 'kmesh-pack-tarballs-'))
t.teardown(() => rmSync(tarballs, { recursive: true, force: true }))
const packed = new Map<string, Packed>()

// Packed without the prepack builds: the suite builds the workspace first (`pnpm test` runs turbo build), and a
// build here could rewrite dist/ under a test running beside this one. scripts/release/dry-run.mjs packs with
// them, and the prepack script is checked below. The installs then run two at a time.
t.setTimeout(900_000)
t.jobs = 2
t.before(() => {
  for (const pkg of packages) packed.set(pkg.name, release.pack(pkg, tarballs, { ignoreScripts: true }))
})

t.test('the publishable set', async (t) => {
  t.same(
    packages.map((p) => p.name),
    [
      '@kmesh-ts/authz',
      '@kmesh-ts/authz-compiler',
      '@kmesh-ts/bpf-maps',
      '@kmesh-ts/bpf-progs',
      '@kmesh-ts/ip',
      '@kmesh-ts/ipsec',
      '@kmesh-ts/kernel-abi',
      '@kmesh-ts/kmesh-daemon',
      '@kmesh-ts/lb-model',
      '@kmesh-ts/xds-client',
    ],
    'every package under packages/ and apps/, none of the private tools/',
  )
  t.equal(packed.size, packages.length, 'every package packed')
})

t.test(
  'TypeScript finds the types of every subpath (moduleResolution node and nodenext, skipLibCheck off)',
  async (t) => {
    // One folder with every tarball (optional peers included), so tsc runs twice in all instead of twice a package;
    // that each package's types need only its own dependencies is checked per package above, from the .d.ts imports.
    const folder = mkdtempSync(join(tmpdir(), 'kmesh-pack-types-'))
    t.teardown(() => rmSync(folder, { recursive: true, force: true }))
    writeFileSync(join(folder, 'package.json'), '{ "name": "kmesh-pack-types", "private": true, "type": "module" }\n')
    const all = packages.map((p) => packed.get(p.name)?.file).filter((f): f is string => f !== undefined)
    t.equal(all.length, packages.length, 'every tarball')
    await run(
      'npm',
      ['install', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error', ...all, typesNode],
      folder,
    )
    const specifiers = packages.flatMap((p) => release.exportedSpecifiers(p.manifest))
    const imports = specifiers.map((s, i) => `import * as m${i} from '${s}'\n`).join('')
    writeFileSync(join(folder, 'check.ts'), `${imports}export const modules = [${specifiers.map((_, i) => `m${i}`)}]\n`)
    // module commonjs + moduleResolution node is what older projects use; esModuleInterop as `tsc --init` sets it
    // (our .d.ts default-import protobufjs and pino, as TypeScript's own output does with esModuleInterop).
    const resolutions = [
      { moduleResolution: 'node', module: 'commonjs', esModuleInterop: true },
      { moduleResolution: 'nodenext', module: 'nodenext' },
    ]
    for (const options of resolutions) {
      const config = `tsconfig.${options.moduleResolution}.json`
      const compilerOptions = { ...options, target: 'es2022', strict: true, noEmit: true, skipLibCheck: false }
      writeFileSync(
        join(folder, config),
        JSON.stringify({ compilerOptions: { ...compilerOptions, types: ['node'] }, files: ['check.ts'] }),
      )
      let errors = ''
      try {
        await run(process.execPath, [tsc, '-p', config], folder)
      } catch (err) {
        errors = (err as Error).message
      }
      t.equal(errors, '', `tsc, moduleResolution ${options.moduleResolution}: ${specifiers.length} specifiers`)
    }
  },
)

for (const pkg of packages) {
  t.test(pkg.name, { buffered: true }, async (t) => {
    const tarball = packed.get(pkg.name)
    if (!tarball) return t.fail(`${pkg.name} was not packed`)
    const { manifest, files } = tarball

    t.test('manifest and files', async (t) => {
      t.equal(manifest.license, LICENSE_OF[pkg.name] ?? 'Apache-2.0', 'licence')
      t.match(manifest.repository, {
        type: 'git',
        url: /^git\+https:\/\//,
        directory: relative(release.repoRoot, pkg.dir),
      })
      t.equal(manifest.engines?.node, '>=20.19', 'engines: require(esm) is on by default from Node 20.19')
      t.ok(manifest.sideEffects === false || Array.isArray(manifest.sideEffects), 'sideEffects declared')
      t.equal(manifest.publishConfig?.access, 'public', 'a scoped package publishes as public')
      t.match(pkg.manifest.scripts?.prepack ?? '', /\bbuild\b/, 'prepack builds (dist/ and obj/ are not in git)')
      t.notMatch(JSON.stringify(manifest), /workspace:/, 'no workspace: protocol left in the packed manifest')
      for (const name of ['LICENSE', 'README.md', 'CHANGELOG.md', 'package.json']) t.ok(files.includes(name), name)
      t.same(
        files.filter((f) => /(^|\/)(test|tests|__tests__|fixtures)\/|\.test\.|\.tsbuildinfo$/.test(f)),
        [],
        'no tests',
      )
      t.ok(manifest.main && files.includes(manifest.main.replace(/^\.\//, '')), `main ${manifest.main} is shipped`)
      t.ok(manifest.types && files.includes(manifest.types.replace(/^\.\//, '')), `types ${manifest.types} is shipped`)
      for (const [sub, conditions] of Object.entries(manifest.exports ?? {})) {
        t.same(Object.keys(conditions), ['types', 'import', 'default'], `exports["${sub}"]: types, import, default`)
        for (const target of Object.values(conditions))
          t.ok(files.includes(target.replace(/^\.\//, '')), `exports["${sub}"] -> ${target} is shipped`)
        if (sub !== '.')
          t.same(manifest.typesVersions?.['*']?.[sub.slice(2)], [conditions.types], `typesVersions maps ${sub}`)
      }
      if (pkg.name === '@kmesh-ts/bpf-progs') {
        const sources = files.filter((f) => /^src\/[^/]+\.c$/.test(f))
        t.ok(sources.length > 0, 'C sources shipped')
        for (const c of sources) t.ok(files.includes(c.replace(/^src\/(.*)\.c$/, 'obj/$1.o')), `${c} compiled object`)
        for (const text of ['Apache-2.0', 'GPL-2.0-only', 'BSD-2-Clause'])
          t.ok(files.includes(`LICENSES/${text}.txt`), `LICENSES/${text}.txt`)
      }
    })

    const closure = release.runtimeClosure(pkg.name, packages)
    const folder = mkdtempSync(join(tmpdir(), 'kmesh-pack-install-'))
    t.teardown(() => rmSync(folder, { recursive: true, force: true }))
    t.notOk(folder.startsWith(release.repoRoot), `install folder ${folder} is outside the workspace`)
    writeFileSync(
      join(folder, 'package.json'),
      '{ "name": "kmesh-pack-stranger", "private": true, "type": "module" }\n',
    )
    const started = Date.now()
    await run(
      'npm',
      [
        'install',
        '--prefer-offline',
        '--no-audit',
        '--no-fund',
        '--loglevel=error',
        ...closure.map((n) => (packed.get(n) as Packed).file),
      ],
      folder,
    )
    const installMs = Date.now() - started
    t.pass(`npm install of ${closure.join(', ')} (${installMs} ms)`)

    t.test('the README example prints ok', async (t) => {
      const block = release.firstJsBlock(readFileSync(join(pkg.dir, 'README.md'), 'utf8'))
      t.ok(block, 'README has a js block')
      writeFileSync(join(folder, 'example.mjs'), block ?? '')
      t.equal(await run(process.execPath, ['example.mjs'], folder), 'ok\n')
    })

    if (pkg.name === '@kmesh-ts/kmesh-daemon')
      t.test('the command and the demo run from the install', async (t) => {
        const help = await run(join(folder, 'node_modules', '.bin', 'kmesh-daemon'), ['--help'], folder)
        t.match(help, /--mesh-file/, 'node_modules/.bin/kmesh-daemon --help')
        // The demo (root only, so not run here) defaults to the mesh file next to it in the package.
        const demo = join(folder, 'node_modules', '@kmesh-ts', 'kmesh-daemon', 'dist', 'demo', 'main.js')
        const reference = /new URL\('([^']+demo-mesh\.yaml)', import\.meta\.url\)/.exec(readFileSync(demo, 'utf8'))?.[1]
        t.ok(reference, "the demo's default mesh file is found relative to the demo")
        const meshFile = fileURLToPath(new URL(reference ?? 'missing', pathToFileURL(demo)))
        t.ok(meshFile.startsWith(folder) && existsSync(meshFile), `${meshFile} is installed`)
      })

    const specifiers = release.exportedSpecifiers(manifest)
    t.test('every subpath loads with import() and with require()', async (t) => {
      const probe = (how: string) =>
        `const names = {}; for (const s of ${JSON.stringify(specifiers)}) names[s] = Object.keys(${how}).sort(); console.log(JSON.stringify(names))`
      writeFileSync(join(folder, 'load-esm.mjs'), probe('await import(s)'))
      writeFileSync(join(folder, 'load-cjs.cjs'), probe('require(s)'))
      const esm = JSON.parse(await run(process.execPath, ['load-esm.mjs'], folder)) as Record<string, string[]>
      const cjs = JSON.parse(await run(process.execPath, ['load-cjs.cjs'], folder)) as Record<string, string[]>
      for (const s of specifiers) {
        t.ok((esm[s] ?? []).length > 0, `${s}: import() gives ${esm[s]?.length} exports`)
        t.same(
          (cjs[s] ?? []).filter((k) => k !== '__esModule' && k !== 'module.exports'),
          esm[s],
          `${s}: require() gives the same`,
        )
      }
    })

    t.test('the types import only what the package depends on', async (t) => {
      const manifestFile = join(folder, 'node_modules', ...pkg.name.split('/'), 'package.json')
      const installed = JSON.parse(readFileSync(manifestFile, 'utf8')) as Manifest & {
        peerDependencies?: Record<string, string>
        peerDependenciesMeta?: Record<string, { optional?: boolean }>
      }
      const declared = new Set([
        ...Object.keys(installed.dependencies ?? {}),
        ...Object.keys(installed.peerDependencies ?? {}),
      ])
      const imported = new Set<string>()
      for (const file of files.filter((f) => f.endsWith('.d.ts'))) {
        const text = readFileSync(join(manifestFile, '..', file), 'utf8')
        for (const m of text.matchAll(/(?:from|import)\s*\(?\s*'([^'.][^']*)'/g)) {
          const spec = m[1] as string
          if (spec.startsWith('node:')) continue
          imported.add(spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : (spec.split('/')[0] as string))
        }
      }
      t.same([...imported].filter((d) => !declared.has(d)).sort(), [], 'every package a .d.ts imports is a dependency')
      const readme = readFileSync(join(pkg.dir, 'README.md'), 'utf8')
      for (const [peer, meta] of Object.entries(installed.peerDependenciesMeta ?? {}))
        if (meta.optional && imported.has(peer))
          t.ok(
            readme.includes(`\`${peer}\` is needed for its types`),
            `README tells TypeScript users to install ${peer}`,
          )
    })

    t.comment(
      `${pkg.name}: ${(tarball.size / 1024).toFixed(1)} kB, ${files.length} files, install of ${closure.length} tarball(s) ${installMs} ms`,
    )
  })
}
