#!/usr/bin/env node
// Test tiers (issue 10, item 8). Every test file is in exactly one tier, and the tier is in its name:
//
//   *.kernel.test.ts   kernel: root, bpffs, cgroup v2, network namespaces, BPF objects loaded into the kernel.
//                      Each such test skips through privilegedSkip() (@kmesh-ts/testkit), naming what is missing.
//   *.vm.test.ts       vm: the QEMU test VM (tools/vm), for what the host kernel lacks (ESP/GCM); vmSkip().
//   *.test.ts          unit: everything else. No root, no bpffs, no cgroups, no namespaces, no VM: passes as any user.
//
// tools/testkit/test/test-tiers.test.ts (unit tier) holds the tiers to this: a unit file that reaches a
// privileged helper, or a kernel/vm file that does not skip through one, fails it.
//
//   node scripts/test-tiers.mjs unit|kernel|vm|all [PATH...] [-- TAP-ARGS...]   run one tier with tap (PATH: only
//                                                                                files under these folders/files)
//   node scripts/test-tiers.mjs list [unit|kernel|vm]                           print the files, one a line
//
// The root package.json's test:unit / test:kernel / test:vm build first (turbo, cached) and call this.
// `bash scripts/test.sh` (the README's command, and CI's) still runs every tier in one tap run over .taprc.
import { spawnSync } from 'node:child_process'
import { existsSync, readdirSync, statSync } from 'node:fs'
import { dirname, join, relative, resolve, sep } from 'node:path'
import { fileURLToPath } from 'node:url'

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..')
export const TIERS = ['unit', 'kernel', 'vm']

/** The folders .taprc's include globs start from (`<workspace>/*\/test/**\/*.test.ts`). */
export const WORKSPACES = ['packages', 'apps', 'tools']
/** Folders tap never collects tests from (its default exclude, plus node_modules). */
const SKIPPED_DIRS = /^(node_modules|dist|fixtures?|tap-snapshots|\.git)$/

/** The tier of a test file, from its name; undefined for a file that is not a test file. */
export function tierOf(file) {
  if (!file.endsWith('.test.ts')) return undefined
  const name = file.split(/[\\/]/).pop()
  if (name.endsWith('.kernel.test.ts')) return 'kernel'
  if (name.endsWith('.vm.test.ts')) return 'vm'
  return 'unit'
}

function walk(dir, out) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.isDirectory()) {
      if (!SKIPPED_DIRS.test(entry.name)) walk(join(dir, entry.name), out)
    } else if (entry.name.endsWith('.test.ts')) {
      out.push(join(dir, entry.name))
    }
  }
  return out
}

/** Every test file tap's .taprc includes, repository-relative with '/', sorted. */
export function testFiles(root = ROOT) {
  const files = []
  for (const ws of WORKSPACES) {
    const wsDir = join(root, ws)
    if (!existsSync(wsDir)) continue
    for (const pkg of readdirSync(wsDir)) {
      const testDir = join(wsDir, pkg, 'test')
      if (existsSync(testDir) && statSync(testDir).isDirectory()) walk(testDir, files)
    }
  }
  return files.map((f) => relative(root, f).split(sep).join('/')).sort()
}

/** The test files of one tier ('all': every tier), optionally only those under the given paths. */
export function tierFiles(tier, paths = [], root = ROOT) {
  const under = paths.map((p) => relative(root, resolve(p)).split(sep).join('/').replace(/\/$/, ''))
  return testFiles(root).filter(
    (f) =>
      (tier === 'all' || tierOf(f) === tier) &&
      (under.length === 0 || under.some((p) => p === '' || f === p || f.startsWith(`${p}/`))),
  )
}

function main(argv) {
  const [cmd, ...rest] = argv
  const dash = rest.indexOf('--')
  const paths = dash < 0 ? rest : rest.slice(0, dash)
  const tapArgs = dash < 0 ? [] : rest.slice(dash + 1)
  if (cmd === 'list') {
    const tier = paths[0] ?? 'all'
    if (tier !== 'all' && !TIERS.includes(tier)) return usage()
    for (const f of tierFiles(tier)) console.log(tier === 'all' ? `${tierOf(f).padEnd(6)} ${f}` : f)
    return 0
  }
  if (cmd !== 'all' && !TIERS.includes(cmd)) return usage()
  const files = tierFiles(cmd, paths)
  if (files.length === 0) {
    console.error(`test-tiers: no ${cmd} test files${paths.length ? ` under ${paths.join(', ')}` : ''}`)
    return 1
  }
  console.log(
    `== ${cmd} tier: ${files.length} test files (KMESH_REQUIRE_PRIVILEGED=${process.env.KMESH_REQUIRE_PRIVILEGED ?? 0})`,
  )
  // bpftool lives in /usr/sbin, which is not on a non-root user's PATH on Debian; the unit tier reads BTF with it.
  const path = [process.env.PATH ?? '', '/usr/local/sbin', '/usr/sbin', '/sbin'].filter(Boolean).join(':')
  const tap = join(ROOT, 'node_modules', '.bin', 'tap')
  const r = spawnSync(tap, [...tapArgs, ...files], { cwd: ROOT, stdio: 'inherit', env: { ...process.env, PATH: path } })
  if (r.error) {
    console.error(`test-tiers: cannot run ${tap}: ${r.error.message}`)
    return 1
  }
  return r.status ?? 1
}

function usage() {
  console.error(
    'usage: node scripts/test-tiers.mjs unit|kernel|vm|all [PATH...] [-- TAP-ARGS...]\n       node scripts/test-tiers.mjs list [unit|kernel|vm]',
  )
  return 2
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url))
  process.exitCode = main(process.argv.slice(2))
