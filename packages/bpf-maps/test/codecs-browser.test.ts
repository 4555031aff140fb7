/**
 * The codecs entry is platform-neutral: esbuild bundles it for the browser with no Node built-in available, the
 * bundle runs in a fresh vm context that has no Buffer, process or require, and it decodes a map dump
 * (test/fixtures/map-dump.hex) to exactly what the Node entry decodes.
 */
import t from 'tap'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import vm from 'node:vm'
import { build, type Plugin } from 'esbuild'
import * as node from '../src/codecs/index.js'

const here = (p: string): string => fileURLToPath(new URL(p, import.meta.url))
const entry = here('../src/codecs/index.ts')

// @kmesh-ts/ip and @kmesh-ts/kernel-abi from their sources, so the bundle is of this checkout whether or not they were built.
const workspaceSources: Plugin = {
  name: 'workspace-source',
  setup(b) {
    b.onResolve({ filter: /^@kmesh-ts\/ip$/ }, () => ({ path: here('../../ip/src/index.ts') }))
    b.onResolve({ filter: /^@kmesh-ts\/kernel-abi$/ }, () => ({ path: here('../../kernel-abi/src/index.ts') }))
  },
}

async function bundle(options: { entry?: string; stdin?: string }): Promise<string> {
  const result = await build({
    ...(options.stdin !== undefined
      ? { stdin: { contents: options.stdin, resolveDir: here('.'), loader: 'ts' } }
      : { entryPoints: [options.entry ?? entry] }),
    bundle: true,
    write: false,
    platform: 'browser',
    format: 'iife',
    globalName: 'codecs',
    target: 'es2022',
    external: [],
    plugins: [workspaceSources],
    logLevel: 'silent',
  })
  return result.outputFiles[0]!.text
}

/** What must not be in a browser bundle. */
const NODE_ONLY = /require\(|\bBuffer\b|['"`]node:|\bprocess\./

interface Record {
  map: string
  key: string
  value: string
}

function readDump(): Record[] {
  const out: Record[] = []
  for (const line of readFileSync(here('./fixtures/map-dump.hex'), 'utf8').split('\n')) {
    if (line === '' || line.startsWith('#')) continue
    const [word, hex = ''] = line.split(' ')
    if (word === 'key' || word === 'value') out[out.length - 1]![word] += hex
    else out.push({ map: word!, key: '', value: '' })
  }
  return out
}

/** Runs in both realms (its source is evaluated in the vm): decoded records as comparable text. */
function decodeAll(c: typeof node, records: Record[]): string {
  const bytes = (hex: string): Uint8Array => {
    const b = new Uint8Array(hex.length / 2)
    for (let i = 0; i < b.length; i++) b[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16)
    return b
  }
  const codecs: { [map: string]: [node.Codec<unknown>, node.Codec<unknown>] } = {
    km_frontend: [c.frontendKey, c.frontendValue],
    km_service: [c.serviceKey, c.serviceValue],
    km_endpoint: [c.endpointKey, c.endpointValue],
    km_backend: [c.backendKey, c.backendValue],
    km_manage: [c.managerKey, c.u32Value],
    km_nodeinfo: [c.lpmKey, c.u32Value],
    km_sockstorage: [c.u32Value, c.sockStorage],
  }
  const text = (v: unknown): string =>
    JSON.stringify(v, (_k, x: unknown) => {
      if (typeof x === 'bigint') return `${x}n`
      if (x instanceof Uint8Array) return `bytes:${Array.from(x, (n) => n.toString(16).padStart(2, '0')).join('')}`
      return x === undefined ? '<undefined>' : x
    })
  return records
    .map((r) => {
      const [k, v] = codecs[r.map]!
      return `${r.map} ${text(k.decode(bytes(r.key), 0))} ${text(v.decode(bytes(r.value), 0))}`
    })
    .join('\n')
}

t.test('the bundle builder refuses Node built-ins and the text check catches Buffer', async (t) => {
  await t.rejects(bundle({ stdin: `import { isIP } from 'node:net'\nexport const f = isIP` }), /node:net/)
  t.match(await bundle({ stdin: 'export const b = Buffer.alloc(4)' }), NODE_ONLY, 'a Buffer global is seen')
})

t.test('the codecs bundle for the browser and decode a map dump as the Node entry does', async (t) => {
  if (!node.hostIsLittleEndian) return t.skip('the fixture holds little-endian host integers')
  const code = await bundle({})
  t.notMatch(code, NODE_ONLY, 'no require(, Buffer, node: or process. in the bundle')

  const context = vm.createContext({ TextEncoder, TextDecoder })
  t.same(
    vm.runInContext('[typeof Buffer, typeof process, typeof require, typeof Uint8Array, typeof DataView]', context),
    ['undefined', 'undefined', 'undefined', 'function', 'function'],
    'a fresh context with standard globals only',
  )
  vm.runInContext(code, context, { filename: 'codecs.bundle.js' })
  const records = readDump()
  t.ok(records.length >= 20, `${records.length} records`)
  t.same(new Set(records.map((r) => r.map)).size, 7, 'every map of the dump format')
  context.records = records
  // The test's own helper is carried over as source text; a TypeScript loader built on esbuild (tsx) names
  // functions through an `__name` helper, which the fresh context lacks. The bundle itself never uses it.
  context.__name = <T>(f: T): T => f
  const inBrowser = vm.runInContext(`(${decodeAll.toString()})(codecs, records)`, context) as string
  const inNode = decodeAll(node, records)
  t.equal(inBrowser, inNode, 'the same decoded records')
  t.match(inNode, /"address":"::ffff:10.96.0.11"/, 'a v4-mapped frontend')
  t.match(inNode, /"netnsCookie":"18364758544493064720n"/, 'a u64 netns cookie')

  // The dump is real records: the Node codecs give back its exact bytes.
  const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex')
  const byMap = { ...node.mapSpecs, nodeinfo: node.nodeInfoMapSpec }
  type Pair = [node.Codec<unknown>, node.Codec<unknown>]
  const specOf = (map: string): Pair => {
    if (map === 'km_sockstorage') return [node.u32Value, node.sockStorage] as Pair
    const spec = Object.values(byMap).find((s) => s.name === map)!
    return [spec.key, spec.value] as Pair
  }
  for (const r of records) {
    const [k, v] = specOf(r.map)
    const key = k.decode(Buffer.from(r.key, 'hex'))
    t.equal(hex(node.encodeRecord(k, key)), r.key, `${r.map} key round-trips`)
    t.equal(hex(node.encodeRecord(v, v.decode(Buffer.from(r.value, 'hex')))), r.value, `${r.map} value round-trips`)
  }
})
