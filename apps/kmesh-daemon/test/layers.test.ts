/**
 * The daemon's layers, read from the import statements of src/: sources -> model/processor -> dataplane. The mesh
 * file format is known only to the file source; the dataplane knows nothing above it; folders import each other
 * in one direction only (issue 10, item 2).
 */
import { readdirSync, readFileSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import t from 'tap'

const SRC = resolve(import.meta.dirname, '../src')

function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? files(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  )
}

/** The layer of a source file: its folder under src/ (sources/cluster is one), or the file itself at the top. */
function layer(file: string): string {
  const rel = relative(SRC, file)
  const parts = rel.split('/')
  if (parts[0] === 'sources' && parts.length > 2) return `sources/${parts[1]}`
  if (parts.length === 1) return rel.replace(/\.ts$/, '')
  return parts[0] === 'sources' ? rel.replace(/\.ts$/, '') : parts[0]!
}

/** [importing file, imported file] for every relative import in src/. */
const edges: [string, string][] = files(SRC).flatMap((file) => {
  const text = readFileSync(file, 'utf8')
  return [...text.matchAll(/(?:from|import)\s*\(?\s*'(\.{1,2}\/[^']+)'/g)].map(
    (m) => [file, resolve(dirname(file), m[1]!).replace(/\.js$/, '.ts')] as [string, string],
  )
})

const importsOf = (from: string): Set<string> =>
  new Set(edges.filter(([f, to]) => layer(f) === from && layer(to) !== from).map(([, to]) => layer(to)))

t.test('the model depends on nothing else in the daemon', async (t) => {
  t.ok(edges.length > 100, `the import statements were read (${edges.length})`)
  t.same([...importsOf('model')], [])
})

t.test('only the file source reads the mesh file format', async (t) => {
  const users = new Set(
    edges.filter(([f, to]) => layer(to) === 'mesh-file' && layer(f) !== 'mesh-file').map(([f]) => relative(SRC, f)),
  )
  users.delete('index.ts') // the package's public API re-exports the parser for embedders
  t.same([...users], ['sources/local-mesh.ts'])
})

t.test('the dataplane knows nothing above it', async (t) => {
  for (const above of ['model', 'processor', 'mesh-file', 'sources/cluster', 'sources/local-mesh', 'daemon'])
    t.notOk(importsOf('dataplane').has(above), `dataplane does not import ${above}`)
})

t.test('the processor does not know its sources', async (t) => {
  for (const source of ['mesh-file', 'sources/cluster', 'sources/local-mesh'])
    t.notOk(importsOf('processor').has(source), `processor does not import ${source}`)
})

t.test('no two folders import each other', async (t) => {
  const layers = new Set(edges.map(([f]) => layer(f)))
  const cycles: string[] = []
  for (const a of layers) for (const b of importsOf(a)) if (a < b && importsOf(b).has(a)) cycles.push(`${a} <-> ${b}`)
  t.same(cycles, [])
})
