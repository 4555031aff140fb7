/**
 * The BPF objects are reproducible: the package's sources copied to two checkouts at different paths (different
 * lengths too, so an embedded path would also shift offsets) build to byte-identical objects, and no object names
 * either checkout (or the real one) anywhere in its ELF, DWARF or BTF. The flags that make this so are in
 * scripts/cflags.mjs (-ffile-prefix-map, -fdebug-compilation-dir). Unprivileged: needs clang, no kernel.
 */
import t from 'tap'
import { execFileSync } from 'node:child_process'
import { cpSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const pkg = fileURLToPath(new URL('..', import.meta.url)).replace(/\/$/, '')
/** What build.mjs reads: the C sources, the headers and the scripts themselves (they locate the package). */
const buildInputs = ['src', 'include', 'scripts']

function checkout(root: string): string {
  const dir = join(root, 'bpf-progs')
  mkdirSync(dir, { recursive: true })
  for (const entry of buildInputs) cpSync(join(pkg, entry), join(dir, entry), { recursive: true })
  return dir
}

function build(dir: string): Map<string, Buffer> {
  execFileSync(process.execPath, [join(dir, 'scripts', 'build.mjs')], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] })
  const objDir = join(dir, 'obj')
  const objects = new Map<string, Buffer>()
  for (const name of readdirSync(objDir).sort()) objects.set(name, readFileSync(join(objDir, name)))
  return objects
}

t.test('two checkouts at different paths build byte-identical objects without their paths', async (t) => {
  // Outside the repository, so nothing of the real checkout's path can be a prefix of the copies'.
  const root = mkdtempSync(join(tmpdir(), 'kmesh-pack-repro-'))
  t.teardown(() => rmSync(root, { recursive: true, force: true }))
  // Different depth and length: /…/a/bpf-progs and /…/pack-second-checkout/nested/bpf-progs.
  const first = checkout(join(root, 'a'))
  const second = checkout(join(root, 'pack-second-checkout', 'nested'))
  const a = build(first)
  const b = build(second)

  const sources = readdirSync(join(pkg, 'src')).filter((f) => f.endsWith('.c'))
  t.same([...a.keys()], sources.map((f) => f.replace(/\.c$/, '.o')).sort(), 'one object per C source')
  t.same([...b.keys()], [...a.keys()], 'both checkouts build the same objects')

  for (const [name, bytes] of a) {
    const other = b.get(name) as Buffer
    t.ok(bytes.equals(other), `${name}: byte-identical (${bytes.length} and ${other.length} bytes)`)
    for (const path of [first, second, pkg, root]) {
      t.equal(bytes.indexOf(path), -1, `${name} does not contain ${path}`)
      t.equal(other.indexOf(path), -1, `${name} (second checkout) does not contain ${path}`)
    }
    const source = `src/${name.replace(/\.o$/, '.c')}`
    t.ok(bytes.includes(Buffer.from(`${source}\0`)), `${name} names its source relative to the package: ${source}`)
  }
})
