/** Helpers shared by the mesh-file tests (not a test file itself: no `.test.ts`). */
import { MeshFileError, parseMeshFile, type MeshFileProblem } from '../src/mesh-file/index.js'

export const FIXTURES = new URL('./fixtures/mesh-file/', import.meta.url).pathname

/** The problems of a file that must be refused; throws if it was accepted. */
export function refused(text: string, file = 'mesh.yaml'): MeshFileProblem[] {
  try {
    parseMeshFile(text, file)
  } catch (err) {
    if (err instanceof MeshFileError) return err.problems
    throw err
  }
  throw new Error('the file was accepted')
}

/** Default lines of an entry, minus the keys `extra` sets itself, then `extra` (indented as a list item). */
function entry(defaults: string[], extra: string): string {
  const extraLines = extra.split('\n').filter((l) => l.trim() !== '')
  const overridden = new Set(extraLines.map((l) => /^([A-Za-z]+):/.exec(l)?.[1]).filter((k) => k !== undefined))
  const kept = defaults.filter((l, i) => i === 0 || !overridden.has(/^([A-Za-z]+):/.exec(l)?.[1] ?? ''))
  return [...kept.map((l, i) => (i === 0 ? `- ${l}` : `  ${l}`)), ...extraLines.map((l) => `  ${l}`)].join('\n')
}

/** A minimal valid workload entry; `extra` lines are appended and replace defaults with the same key. */
export function workload(uid: string, extra = '', services = '{}'): string {
  return entry([`uid: ${uid}`, 'name: w', 'namespace: default', 'workloadIps: []', `services: ${services}`], extra)
}

export function service(ns: string, host: string, extra = ''): string {
  return entry(
    [`name: ${host.split('.')[0]}`, `namespace: ${ns}`, `hostname: ${host}`, 'vips: []', 'ports: {80: 8080}'],
    extra,
  )
}

export function policy(ns: string, name: string, extra: string, rules: string): string {
  return [`- name: ${name}`, `  namespace: ${ns}`, extra, '  rules:', rules].filter((l) => l !== '').join('\n')
}
