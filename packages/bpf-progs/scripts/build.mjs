#!/usr/bin/env node
// Compiles every src/*.c into obj/*.o with BTF kept (clang -target bpf -O2 -g). This script is the source of
// truth for the objects: the package's build runs it, and the objects ship in the npm package.
// Flags and environment (CLANG, BPF_EXTRA_CFLAGS): scripts/cflags.mjs.
import { execFileSync } from 'node:child_process'
import { mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs'
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
  // Compiled to a temporary name and renamed over the object, so a test loading obj/*.o while a build runs (pack's
  // prepack, a second turbo run) never reads half an object; an unchanged object (builds are reproducible) is
  // left alone, mtime included.
  const temp = `${output}.tmp-${process.pid}`
  try {
    execFileSync(clang, [...cflags, '-c', input, '-o', temp], { stdio: ['ignore', 'inherit', 'inherit'] })
    if (sameBytes(temp, output)) rmSync(temp)
    else renameSync(temp, output)
  } catch (err) {
    rmSync(temp, { force: true })
    console.error(`bpf-progs build: FAILED to compile ${relative(pkg, input)}: ${clangFailure(err)}`)
    process.exit(1)
  }
  console.log(`bpf-progs build: ${relative(pkg, input)} -> ${relative(pkg, output)} (${statSync(output).size} bytes)`)
}

function sameBytes(a, b) {
  try {
    return readFileSync(a).equals(readFileSync(b))
  } catch {
    return false
  }
}
