#!/usr/bin/env node
// Compiles every src/*.c into obj/*.o with BTF kept (clang -target bpf -O2 -g). This script is the source of
// truth for the objects: the package's build runs it, and the objects ship in the npm package.
// Flags and environment (CLANG, BPF_EXTRA_CFLAGS): scripts/cflags.mjs.
import { execFileSync } from 'node:child_process'
import { mkdirSync, readdirSync, statSync } from 'node:fs'
import { join, relative } from 'node:path'
import { cflags, clang, clangFailure, pkg } from './cflags.mjs'

const srcDir = join(pkg, 'src')
const objDir = join(pkg, 'obj')

const sources = readdirSync(srcDir)
  .filter((f) => f.endsWith('.c'))
  .sort()
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
    console.error(`bpf-progs build: FAILED to compile ${relative(pkg, input)}: ${clangFailure(err)}`)
    process.exit(1)
  }
  console.log(`bpf-progs build: ${relative(pkg, input)} -> ${relative(pkg, output)} (${statSync(output).size} bytes)`)
}
