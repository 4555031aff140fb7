#!/usr/bin/env node
/**
 * Builds the CNI plugin (cni/kmesh-cni.c) into bin/kmesh-cni: a static binary, because it runs on the node
 * where neither node nor a matching libc can be assumed. clang and libc6-dev come from scripts/setup.sh.
 * Written to a temporary name and renamed, so a test or an installer never copies a half-written file.
 */
import { execFileSync } from 'node:child_process'
import { mkdirSync, renameSync, rmSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const pkg = join(dirname(fileURLToPath(import.meta.url)), '..')
const source = join(pkg, 'cni', 'kmesh-cni.c')
const output = join(pkg, 'bin', 'kmesh-cni')
const temp = `${output}.tmp-${process.pid}`
const cc = process.env.CC || 'clang'
const flags = ['-static', '-Os', '-s', '-std=gnu11', '-Wall', '-Wextra', '-Werror']

mkdirSync(dirname(output), { recursive: true })
try {
  execFileSync(cc, [...flags, '-o', temp, source], { stdio: ['ignore', 'inherit', 'inherit'] })
  renameSync(temp, output)
} catch (e) {
  rmSync(temp, { force: true })
  const why = e.code === 'ENOENT' ? `${cc} is not installed (scripts/setup.sh installs clang and libc6-dev)` : e.message
  console.error(`build-cni: compiling ${source} failed: ${why}`)
  process.exit(1)
}
console.log(`build-cni: ${output}`)
