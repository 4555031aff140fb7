/**
 * @kmesh-ts/kernel-abi's generated constants are those of the C the objects are built from: (1) regenerating
 * gives the committed file byte for byte; (2) clang, with the build's flags, compiles a `_Static_assert(NAME ==
 * value)` per number of the committed module against include/*.h; (3) the BTF of every compiled object declares
 * exactly the maps BPF_MAPS gives it, with that max_entries. Unprivileged: needs clang and bpftool, no kernel.
 */
import t from 'tap'
import { execFileSync } from 'node:child_process'
import { readFileSync, readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import * as constants from '../../kernel-abi/src/constants.js'
import { objectMaps, objectNames, objectPath } from '../src/index.js'
import { bpftool } from './bpftool.js'

const scripts = fileURLToPath(new URL('../scripts/', import.meta.url))
const generator = join(scripts, 'gen-constants.mjs')
const committedFile = fileURLToPath(new URL('../../kernel-abi/src/constants.ts', import.meta.url))

t.test('the committed constants.ts is what the generator makes from the headers now', async (t) => {
  const fresh = execFileSync(process.execPath, [generator, '--stdout'], { encoding: 'utf8' })
  t.equal(
    readFileSync(committedFile, 'utf8'),
    fresh,
    'stale: run node packages/bpf-progs/scripts/gen-constants.mjs and commit the result',
  )
  t.match(
    fresh,
    /^\/\/ Generated from packages\/bpf-progs\/include\/\*\.h .* do not edit\.\n/,
    'the file says it is generated',
  )
})

t.test('clang agrees with every number of the committed module', async (t) => {
  const { cflags, clang, includeDir } = (await import(join(scripts, 'cflags.mjs'))) as {
    cflags: string[]
    clang: string
    includeDir: string
  }
  const numbers = Object.entries(constants).filter((e): e is [string, number] => typeof e[1] === 'number')
  t.ok(numbers.length >= 20, `${numbers.length} numbers`)
  const headers = readdirSync(includeDir)
    .filter((f) => f.endsWith('.h'))
    .sort()
  const unit = [
    ...headers.map((h) => `#include "${h}"`),
    ...numbers.map(([name, value]) => `_Static_assert(${name} == ${value}, "${name} is not ${value} in C");`),
    '',
  ].join('\n')
  const file = join(t.testdir({}), 'abi_check.c')
  writeFileSync(file, unit)
  let errors = ''
  try {
    execFileSync(clang, [...cflags, '-fsyntax-only', file], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
  } catch (err) {
    errors = String((err as { stderr?: string }).stderr ?? err)
  }
  t.equal(errors, '', 'every _Static_assert holds')
})

interface BtfType {
  id: number
  kind: string
  name: string
  type_id?: number
  nr_elems?: number
  members?: { name: string; type_id: number }[]
  vars?: { type_id: number }[]
}

/** Map name -> max_entries (0 when not declared) from the `.maps` section of an object's BTF. */
function btfMaps(object: string): Map<string, number> {
  const { types } = JSON.parse(bpftool(['-j', 'btf', 'dump', 'file', object, 'format', 'raw'])) as { types: BtfType[] }
  const byId = new Map(types.map((ty) => [ty.id, ty]))
  const out = new Map<string, number>()
  for (const v of types.find((ty) => ty.kind === 'DATASEC' && ty.name === '.maps')?.vars ?? []) {
    const variable = byId.get(v.type_id)!
    const def = byId.get(variable.type_id!)!
    // __uint(max_entries, N) is `int (*max_entries)[N]`: a pointer to an array of N.
    const member = def.members?.find((m) => m.name === 'max_entries')
    const array = member ? byId.get(byId.get(member.type_id)!.type_id!) : undefined
    out.set(variable.name, array?.nr_elems ?? 0)
  }
  return out
}

t.test('every object declares the maps BPF_MAPS gives it, with that max_entries', async (t) => {
  for (const name of objectNames) {
    const declared = btfMaps(objectPath(name))
    t.same([...declared.keys()].sort(), [...objectMaps[name]].sort(), `${name}.o: the maps of its header`)
    for (const [map, maxEntries] of declared) {
      t.equal(
        maxEntries,
        constants.BPF_MAPS[map as keyof typeof constants.BPF_MAPS]?.maxEntries,
        `${name}.o: ${map} max_entries ${maxEntries}`,
      )
    }
  }
})
