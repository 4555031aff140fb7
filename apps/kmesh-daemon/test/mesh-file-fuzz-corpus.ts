/**
 * Seeded random mutations of the valid mesh-file fixtures, shared by the fuzz test and the test that
 * the chunked and whole-document readers agree. Not a test file itself (no `.test.ts`).
 * Set MESH_FUZZ_SEED to reproduce a run; the seed in use is printed by the tests.
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'

import { FIXTURES, policy, service, workload } from './mesh-file-helpers.js'

export const FIXTURE_NAMES = ['example-a.yaml', 'example-b.yaml', 'example-c.yaml']

export function fixtureTexts(): string[] {
  return FIXTURE_NAMES.map((n) => readFileSync(join(FIXTURES, n), 'utf8'))
}

/** mulberry32: small, fast, and the same on every machine. */
export function prng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let x = a
    x = Math.imul(x ^ (x >>> 15), x | 1)
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61)
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }
}

export const SEED = Number(process.env['MESH_FUZZ_SEED'] ?? 20260820)

/**
 * Small valid bases, so 10,000 cases stay fast: each fixture cut into `section:` + one or two items,
 * plus the helpers' entries.
 */
export function bases(): string[] {
  const out: string[] = []
  for (const text of fixtureTexts()) {
    const lines = text.split('\n')
    let section = ''
    let items: string[][] = []
    const flush = (): void => {
      for (let i = 0; i < items.length; i++) {
        out.push(`${section}\n${(items[i] as string[]).join('\n')}\n`)
        if (i + 1 < items.length)
          out.push(`${section}\n${[...(items[i] as string[]), ...(items[i + 1] as string[])].join('\n')}\n`)
      }
      items = []
    }
    for (const line of lines) {
      if (/^(workloads|services|policies):/.test(line)) {
        flush()
        section = line
      } else if (/^- /.test(line)) items.push([line])
      else if (items.length > 0 && line.trim() !== '') items[items.length - 1]?.push(line)
    }
    flush()
  }
  out.push(
    `workloads:\n${workload('a', 'protocol: HBONE', '{"ns/a": {80: 8080}}')}\nservices:\n${service('ns', 'a')}\n`,
  )
  out.push(
    `policies:\n${policy('ns', 'p', '  scope: Global\n  action: Deny\n  dryRun: false', '  - - - principals: [!Exact a, !Presence []]')}\n`,
  )
  out.push(`workloads:\n  - {uid: a, namespace: ns, workloadIps: ["10.0.0.1"], services: {}}\n`)
  return out
}

export interface Case {
  name: string
  input: string | Uint8Array
}

const TAGS = ['!foo ', '!!python/object:os.system ', '!Exact ', '!!str ', '!!int ', '!Presence ', '!!map ']
const PORTS = ['0', '-1', '65536', '99999999999999999999', '"80"', '0x50', '080', '1.5', '~']
const IPS = ['"10.0.0.256"', '"fe80::1%eth0"', '"10.0.0.1/32"', '""', '"::ffff:1.2.3.4"', '[]', '{}']

function pick<T>(rand: () => number, xs: readonly T[]): T {
  return xs[Math.floor(rand() * xs.length)] as T
}

function mutateText(rand: () => number, text: string): [string, string] {
  const lines = text.split('\n')
  const li = Math.floor(rand() * lines.length)
  const line = lines[li] ?? ''
  const k = Math.floor(rand() * 14)
  switch (k) {
    case 0:
      lines.splice(li, 0, line)
      return ['duplicate line', lines.join('\n')]
    case 1:
      lines.splice(li, 1)
      return ['remove line', lines.join('\n')]
    case 2: {
      const d = pick(rand, [-2, -1, 1, 2, 4])
      lines[li] = d > 0 ? ' '.repeat(d) + line : line.slice(Math.min(-d, line.length - line.trimStart().length))
      return ['reindent', lines.join('\n')]
    }
    case 3: {
      const tokens = text.match(/[A-Za-z0-9./"-]+/g) ?? []
      const a = pick(rand, tokens)
      const b = pick(rand, tokens)
      return ['swap scalars', text.replace(a, '\u0000').replace(b, a).replace('\u0000', b)]
    }
    case 4:
      lines[li] = line.replace(/: /, `: ${pick(rand, TAGS)}`)
      return ['insert tag', lines.join('\n')]
    case 5: {
      const anchored = line.replace(/: /, ': &a ')
      lines[li] = anchored
      const lj = Math.floor(rand() * lines.length)
      lines[lj] = (lines[lj] ?? '').replace(/: .*/, ': *a')
      return ['anchor and alias', lines.join('\n')]
    }
    case 6:
      lines[li] = line.replace(/^(\s*)(- )?(\w+): (.+)$/, '$1$2{$3: $4}')
      return ['block to flow', lines.join('\n')]
    case 7:
      return ['flow to block', text.replace(/\{\}/, '\n    x: 1').replace(/\[\]/, '\n    - a')]
    case 8:
      return ['port', text.replace(/\b(80|8080|9080|15008|15088|5432)\b/, pick(rand, PORTS))]
    case 9:
      return ['ip', text.replace(/"(\d+\.\d+\.\d+\.\d+|[0-9a-f:]+::?[0-9a-f]*)"/, pick(rand, IPS))]
    case 10: {
      const n = rand() < 0.5 ? 300 : 70_000
      lines[li] = line.replace(/: .*$/, `: ${'h'.repeat(n)}`)
      return [`huge string (${n})`, lines.join('\n')]
    }
    case 11: {
      const n = pick(rand, [30, 70, 500, 3000])
      lines[li] = line.replace(/: .*$/, `: ${'['.repeat(n)}${rand() < 0.5 ? ']'.repeat(n) : ''}`)
      return [`deep nesting (${n})`, lines.join('\n')]
    }
    case 12:
      lines.splice(
        li,
        0,
        pick(rand, ['---', '...', '%YAML 1.2', '? x', ': y', '- ', '-', '  #c', 'workloads:', 'services: []', '\t- a']),
      )
      return ['insert structure', lines.join('\n')]
    default:
      lines[li] = line.replace(/: .*$/, pick(rand, [': ""', ':', ': ~', ': []', ': {}', ': 0', ': true', ': "x"']))
      return ['value edit', lines.join('\n')]
  }
}

function mutateBytes(rand: () => number, text: string): [string, Uint8Array] {
  const bytes = Array.from(new TextEncoder().encode(text))
  const i = Math.floor(rand() * bytes.length)
  const k = Math.floor(rand() * 3)
  if (k === 0) {
    bytes[i] = (bytes[i] ?? 0) ^ (1 << Math.floor(rand() * 8))
    return ['byte flip', new Uint8Array(bytes)]
  }
  if (k === 1) {
    bytes.splice(i, 0, Math.floor(rand() * 256))
    return ['byte insert', new Uint8Array(bytes)]
  }
  bytes.splice(i, 1 + Math.floor(rand() * 8))
  return ['byte delete', new Uint8Array(bytes)]
}

/** `count` cases from `seed`: one to three mutations each, a quarter of them at the byte level. */
export function* cases(seed: number, count: number): Generator<Case> {
  const rand = prng(seed)
  const all = bases()
  for (let n = 0; n < count; n++) {
    let text = pick(rand, all)
    const names: string[] = []
    const steps = 1 + Math.floor(rand() * 3)
    for (let s = 0; s < steps; s++) {
      const [name, next] = mutateText(rand, text)
      names.push(name)
      text = next
    }
    if (rand() < 0.25) {
      const [name, bytes] = mutateBytes(rand, text)
      yield { name: `#${n}: ${[...names, name].join(', ')}`, input: bytes }
    } else {
      yield { name: `#${n}: ${names.join(', ')}`, input: text }
    }
  }
}
