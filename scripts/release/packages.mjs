// The published packages of the workspace and how a registry would serve them: which packages publish, which
// workspace packages each needs at run time, packing one with pnpm (its prepack builds it; workspace:* becomes the
// exact version), and what a tarball holds. Shared by scripts/release/dry-run.mjs (CI's publish dry run) and
// tools/testkit/test/packages-install.test.ts (each tarball installed with plain npm outside the workspace).
import { execFileSync } from 'node:child_process'
import { readFileSync, readdirSync, statSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..')

/** Folders whose packages may publish; tools/* are private helpers of the repository. */
const PUBLISHED_FOLDERS = ['packages', 'apps']

/** @returns {{ name: string, version: string, dir: string, manifest: any }[]} sorted by name */
export function publishablePackages(root = repoRoot) {
  const found = []
  for (const folder of PUBLISHED_FOLDERS) {
    for (const entry of readdirSync(join(root, folder)).sort()) {
      const dir = join(root, folder, entry)
      let manifest
      try {
        manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'))
      } catch (err) {
        if (err.code === 'ENOENT') continue
        throw new Error(`${join(dir, 'package.json')}: ${err.message}`)
      }
      if (manifest.private) continue
      found.push({ name: manifest.name, version: manifest.version, dir, manifest })
    }
  }
  return found.sort((a, b) => a.name.localeCompare(b.name))
}

/** The workspace packages `name` needs installed, itself first: its `dependencies` that are workspace packages,
 * transitively (dev and optional peer dependencies are not installed by a consumer's npm). */
export function runtimeClosure(name, packages) {
  const byName = new Map(packages.map((p) => [p.name, p]))
  const order = []
  const visit = (n) => {
    if (order.includes(n)) return
    const pkg = byName.get(n)
    if (!pkg) throw new Error(`${n} is not a publishable workspace package`)
    order.push(n)
    for (const dep of Object.keys(pkg.manifest.dependencies ?? {})) if (byName.has(dep)) visit(dep)
  }
  visit(name)
  return order
}

/** The file name pnpm and npm give a package's tarball: @scope/name@1.2.3 -> scope-name-1.2.3.tgz */
export function tarballName(name, version) {
  return `${name.replace(/^@/, '').replace('/', '-')}-${version}.tgz`
}

/**
 * `pnpm pack` of one package into `destination`, then what the tarball holds. Its prepack script builds it first,
 * unless `ignoreScripts` (a caller that built the workspace already, like the test suite). Throws with pnpm's
 * output when packing fails.
 * @returns {{ name: string, version: string, file: string, size: number, files: string[], manifest: any }}
 */
export function pack(pkg, destination, { ignoreScripts = false } = {}) {
  try {
    execFileSync('pnpm', ['pack', ...(ignoreScripts ? ['--ignore-scripts'] : []), '--pack-destination', destination], {
      cwd: pkg.dir,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    })
  } catch (err) {
    throw new Error(`pnpm pack of ${pkg.name} (${pkg.dir}) failed: ${err.stderr || err.stdout || err.message}`)
  }
  const file = join(destination, tarballName(pkg.name, pkg.version))
  return { name: pkg.name, version: pkg.version, file, ...tarballContents(file) }
}

/** The files of a tarball (without the leading package/), its size and the manifest it carries. */
export function tarballContents(file) {
  const files = execFileSync('tar', ['-tzf', file], { encoding: 'utf8' })
    .split('\n')
    .filter((line) => line && !line.endsWith('/'))
    .map((line) => line.replace(/^package\//, ''))
    .sort()
  const manifest = JSON.parse(execFileSync('tar', ['-xzOf', file, 'package/package.json'], { encoding: 'utf8' }))
  return { size: statSync(file).size, files, manifest }
}

/** The first ```js block of a README: the example that must print `ok`. */
export function firstJsBlock(readme) {
  return /```js\n([\s\S]*?)```/.exec(readme)?.[1]
}

/** Every subpath a package exports ('.', './codecs', ...) as the specifier a user writes. */
export function exportedSpecifiers(manifest) {
  return Object.keys(manifest.exports ?? { '.': null }).map((sub) =>
    sub === '.' ? manifest.name : `${manifest.name}/${sub.slice(2)}`,
  )
}
