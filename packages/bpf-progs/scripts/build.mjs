#!/usr/bin/env node
// Compiles every src/*.c into obj/*.o with BTF kept (clang -target bpf -O2 -g). This script is the source of
// truth for the objects: the package's build runs it, and the objects ship in the npm package.
// Environment: CLANG (default "clang"), BPF_EXTRA_CFLAGS (space-separated, appended).
import { execFileSync } from 'node:child_process'
import { mkdirSync, readdirSync, statSync } from 'node:fs'
import { dirname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'

const pkg = join(dirname(fileURLToPath(import.meta.url)), '..')
const srcDir = join(pkg, 'src')
const objDir = join(pkg, 'obj')
const clang = process.env.CLANG ?? 'clang'

/** Debian keeps asm/*.h under the multiarch directory; clang -target bpf does not look there by itself. */
const multiarch = { x64: 'x86_64-linux-gnu', arm64: 'aarch64-linux-gnu', ppc64: 'powerpc64le-linux-gnu', s390x: 's390x-linux-gnu' }[process.arch]
const cflags = [
  '-target', 'bpf', '-O2', '-g', '-Wall', '-Werror',
  ...(multiarch ? [`-I/usr/include/${multiarch}`] : []),
  `-I${join(pkg, 'include')}`,
  ...(process.env.BPF_EXTRA_CFLAGS?.split(' ').filter(Boolean) ?? []),
]

const sources = readdirSync(srcDir).filter((f) => f.endsWith('.c')).sort()
if (sources.length === 0) {
  console.error(`bpf-progs build: no C sources in ${srcDir}`)
  process.exit(1)
}
mkdirSync(objDir, { recursive: true })

for (const source of sources) {
  const input = join(srcDir, source)
  const output = join(objDir, source.replace(/\.c$/, '.o'))
  try {
    execFileSync(clang, [...cflags, '-c', input, '-o', output], { stdio: ['ignore', 'inherit', 'inherit'] })
  } catch (err) {
    const why = err.code === 'ENOENT' ? `${clang} not found (install clang, or set CLANG)` : `exit ${err.status ?? err.signal}`
    console.error(`bpf-progs build: FAILED to compile ${relative(pkg, input)}: ${why}`)
    process.exit(1)
  }
  console.log(`bpf-progs build: ${relative(pkg, input)} -> ${relative(pkg, output)} (${statSync(output).size} bytes)`)
}
