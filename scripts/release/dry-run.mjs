#!/usr/bin/env node
// Release dry run, for CI: packs every publishable package with pnpm (each prepack builds it; workspace:*
// becomes the exact version) and runs `npm publish --dry-run` on each tarball, so the set is proved to publish
// without publishing anything. Prints name, version, tarball size and file count; exits 1 if any step fails.
// Usage: node scripts/release/dry-run.mjs [--keep DIR]   (keep the tarballs in DIR instead of a temp dir)
// Versions come from changesets (`pnpm changeset version`), never from this script: see .changeset/README.md.
import { execFileSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { pack, publishablePackages } from './packages.mjs'

const keepIndex = process.argv.indexOf('--keep')
const keep = keepIndex >= 0 ? resolve(process.argv[keepIndex + 1] ?? 'tarballs') : undefined
const destination = keep ?? mkdtempSync(join(tmpdir(), 'kmesh-release-dry-run-'))
mkdirSync(destination, { recursive: true })

// npm must not read the workspace's settings or pnpm's environment: run it as a stranger would.
const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(npm_|pnpm_)/i.test(k)))

const rows = []
let failed = 0
try {
  for (const pkg of publishablePackages()) {
    let packed
    try {
      packed = pack(pkg, destination)
      const leftover = JSON.stringify(packed.manifest).match(/"workspace:[^"]*"/)
      if (leftover) throw new Error(`the packed manifest still has ${leftover[0]}`)
      execFileSync('npm', ['publish', '--dry-run', '--access', 'public', '--tag', 'latest', packed.file], {
        cwd: destination,
        env,
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
      })
      rows.push([pkg.name, pkg.version, `${(packed.size / 1024).toFixed(1)} kB`, String(packed.files.length), 'ok'])
    } catch (err) {
      failed++
      const why = String(err.stderr || err.message)
        .trim()
        .split('\n')
        .slice(-5)
        .join(' | ')
      rows.push([pkg.name, pkg.version, packed ? `${(packed.size / 1024).toFixed(1)} kB` : '-', '-', `FAILED: ${why}`])
    }
  }
} finally {
  if (!keep) rmSync(destination, { recursive: true, force: true })
}

const header = ['package', 'version', 'tarball', 'files', 'npm publish --dry-run']
const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)))
for (const row of [header, ...rows])
  console.log(
    row
      .map((c, i) => c.padEnd(widths[i]))
      .join('  ')
      .trimEnd(),
  )
console.log(
  failed ? `${failed} of ${rows.length} packages would NOT publish` : `all ${rows.length} packages would publish`,
)
if (keep) console.log(`tarballs kept in ${destination}`)
process.exitCode = failed ? 1 : 0
