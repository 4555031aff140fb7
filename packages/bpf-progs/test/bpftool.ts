/** Thin bpftool wrappers for the tests (no libbpf binding needed: this package knows no TypeScript maps). */
import { execFileSync } from 'node:child_process'
import { join } from 'node:path'
import { objectPath, type ObjectName } from '../src/index.js'

export function bpftool(args: string[]): string {
  try {
    return execFileSync('bpftool', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
  } catch (err) {
    const e = err as { stderr?: string; stdout?: string }
    throw new Error(`bpftool ${args.join(' ')} failed: ${(e.stderr ?? '') + (e.stdout ?? '')}`.slice(0, 4000))
  }
}

export interface LoadedObject {
  progs: string
  maps: string
  prog(name: string): string
  map(name: string): string
}

/** Loads every program of an object through the verifier, pinning programs and maps under pinDir. */
export function loadObject(name: ObjectName, pinDir: string): LoadedObject {
  const progs = join(pinDir, 'progs')
  const maps = join(pinDir, 'maps')
  bpftool(['prog', 'loadall', objectPath(name), progs, 'pinmaps', maps])
  return { progs, maps, prog: (p) => join(progs, p), map: (m) => join(maps, m) }
}

export interface ProgInfo {
  name: string
  type: string
  bytes_xlated: number
  bytes_jited: number
}
export function progInfo(pinned: string): ProgInfo {
  return JSON.parse(bpftool(['-j', 'prog', 'show', 'pinned', pinned])) as ProgInfo
}

const hex = (b: Uint8Array): string[] => ['hex', ...Array.from(b, (x) => x.toString(16).padStart(2, '0'))]

export function mapUpdate(pinnedMap: string, key: Uint8Array, value: Uint8Array): void {
  bpftool(['map', 'update', 'pinned', pinnedMap, 'key', ...hex(key), 'value', ...hex(value)])
}

export function mapDelete(pinnedMap: string, key: Uint8Array): void {
  bpftool(['map', 'delete', 'pinned', pinnedMap, 'key', ...hex(key)])
}

/** Puts a pinned program into a prog array slot (a u32 index, host order). */
export function progArraySet(pinnedMap: string, index: number, pinnedProg: string): void {
  const key = new Uint8Array(4)
  new DataView(key.buffer).setUint32(0, index, true)
  bpftool(['map', 'update', 'pinned', pinnedMap, 'key', ...hex(key), 'value', 'pinned', pinnedProg])
}

/** Keys of a hash map, as raw bytes. */
export function mapKeys(pinnedMap: string): Uint8Array[] {
  const entries = JSON.parse(bpftool(['-j', 'map', 'dump', 'pinned', pinnedMap])) as { key: string[] }[]
  return entries.map((e) => Uint8Array.from(e.key, (b) => parseInt(b, 16)))
}
