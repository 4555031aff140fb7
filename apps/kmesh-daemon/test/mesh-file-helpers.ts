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

/** A minimal valid workload entry (block style, indented as a list item), with extra lines appended. */
export function workload(uid: string, extra = '', services = '{}'): string {
  return [
    `- uid: ${uid}`,
    '  name: w',
    '  namespace: default',
    '  workloadIps: []',
    `  services: ${services}`,
    ...extra
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => `  ${l}`),
  ].join('\n')
}

export function service(ns: string, host: string, extra = ''): string {
  return [
    `- name: ${host.split('.')[0]}`,
    `  namespace: ${ns}`,
    `  hostname: ${host}`,
    '  vips: []',
    '  ports: {80: 8080}',
    ...extra
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => `  ${l}`),
  ].join('\n')
}

export function policy(ns: string, name: string, extra: string, rules: string): string {
  return [`- name: ${name}`, `  namespace: ${ns}`, extra, '  rules:', rules].filter((l) => l !== '').join('\n')
}
