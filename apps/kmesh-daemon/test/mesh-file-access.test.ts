/** Reading a mesh file safely: file kinds, size bound, errno wording, and the worker-isolated read. */
import { execFileSync } from 'node:child_process'
import { mkdtemp, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import t from 'tap'

import {
  DEFAULT_MAX_FILE_BYTES,
  MeshFileError,
  parseMeshFile,
  readMeshFile,
  readMeshFileIsolated,
} from '../src/mesh-file/index.js'
import { FIXTURES, workload } from './mesh-file-helpers.js'

async function tempDir(t: Test): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'kmesh-meshfile-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  return dir
}

type Test = typeof t

t.test('a FIFO is refused at once by name, not read (it would block)', async (t) => {
  const dir = await tempDir(t)
  const fifo = join(dir, 'mesh.fifo')
  execFileSync('mkfifo', [fifo])
  const started = Date.now()
  await t.rejects(readMeshFile(fifo), {
    name: 'MeshFileError',
    problems: [{ file: fifo, entry: 'file', message: /is a FIFO, not a regular file/ }],
  })
  await t.rejects(readMeshFileIsolated(fifo), { problems: [{ message: /is a FIFO, not a regular file/ }] })
  t.ok(Date.now() - started < 2000, `refused within 2 s (${Date.now() - started} ms)`)
})

t.test('a directory and a character device are refused by name; a symlink to a file is read', async (t) => {
  const dir = await tempDir(t)
  await t.rejects(readMeshFile(dir), { problems: [{ message: /is a directory, not a regular file/ }] })
  await t.rejects(readMeshFile('/dev/zero'), { problems: [{ message: /is a character device, not a regular file/ }] })
  const target = join(dir, 'real.yaml')
  await writeFile(target, `workloads:\n${workload('a')}\n`)
  const link = join(dir, 'link.yaml')
  await symlink(target, link)
  t.equal((await readMeshFile(link)).config.workloads[0]?.uid, 'a')
})

t.test('maxBytes: a larger file is refused before it is read, naming the limit', async (t) => {
  t.equal(DEFAULT_MAX_FILE_BYTES, 64 * 1024 * 1024)
  const dir = await tempDir(t)
  const path = join(dir, 'big.yaml')
  await writeFile(path, `workloads: []\n# ${'x'.repeat(5000)}\n`)
  await t.rejects(readMeshFile(path, { maxBytes: 4096 }), {
    problems: [{ file: path, entry: 'file', message: /over the limit of 4 KiB \(maxBytes\)/ }],
  })
  await t.rejects(readMeshFileIsolated(path, { maxBytes: 4096 }), {
    problems: [{ message: /over the limit of 4 KiB/ }],
  })
  t.same((await readMeshFile(path, { maxBytes: 8192 })).config.workloads, [])
})

t.test('errno is named once', async (t) => {
  const missing = join(tmpdir(), 'kmesh-no-such-dir', 'mesh.yaml')
  const err = await readMeshFile(missing).catch((e: unknown) => e)
  t.type(err, MeshFileError)
  const message = (err as MeshFileError).problems[0]?.message ?? ''
  t.equal(message.match(/ENOENT/g)?.length, 1, message)
  t.match(message, /^cannot open: ENOENT: no such file or directory$/)
})

t.test('readMeshFileIsolated: the same result and the same problems as readMeshFile', async (t) => {
  for (const name of ['example-c.yaml']) {
    const path = join(FIXTURES, name)
    t.same(await readMeshFileIsolated(path, { timeoutMs: 20_000, inlineBelowBytes: 0 }), await readMeshFile(path), name)
  }
  const dir = await tempDir(t)
  const bad = join(dir, 'bad.yaml')
  await writeFile(bad, `workloads:\n${workload('a', 'protocol: tcp')}\n${workload('a')}\n`)
  const direct = (await readMeshFile(bad).catch((e: unknown) => e)) as MeshFileError
  const isolated = (await readMeshFileIsolated(bad, { inlineBelowBytes: 0 }).catch((e: unknown) => e)) as MeshFileError
  t.type(isolated, MeshFileError)
  t.same(isolated.problems, direct.problems)
  t.equal(isolated.total, direct.total)
  t.equal(isolated.message, direct.message)
})

t.test('readMeshFileIsolated: a parse over the deadline is stopped and refused by name', async (t) => {
  const dir = await tempDir(t)
  const path = join(dir, 'slow.yaml')
  // About 1.5 MB read whole (a flow-style top level): far more than 50 ms of parsing.
  const items = Array.from(
    { length: 12_000 },
    (_, i) => `{uid: u${i}, name: w, namespace: default, workloadIps: [], services: {}}`,
  )
  await writeFile(path, `{workloads: [${items.join(', ')}]}\n`)
  const started = Date.now()
  await t.rejects(readMeshFileIsolated(path, { timeoutMs: 50 }), {
    name: 'MeshFileError',
    problems: [{ file: path, entry: 'file', message: /parsing took longer than 50 ms/ }],
  })
  t.ok(Date.now() - started < 5000, 'refused promptly')
})

t.test('readMeshFileIsolated: a parse that runs out of memory is a MeshFileError, not a crash', async (t) => {
  const dir = await tempDir(t)
  const path = join(dir, 'heavy.yaml')
  const items = Array.from(
    { length: 12_000 },
    (_, i) => `{uid: u${i}, name: w, namespace: default, workloadIps: [], services: {}}`,
  )
  await writeFile(path, `{workloads: [${items.join(', ')}]}\n`)
  await t.rejects(readMeshFileIsolated(path, { maxHeapMb: 16, timeoutMs: 30_000 }), {
    name: 'MeshFileError',
    problems: [{ file: path, entry: 'file', message: /ran out of memory|the parser (failed|exited)/ }],
  })
  // The daemon's thread is fine and the same file parses with the default heap.
  t.equal((await readMeshFileIsolated(path, { timeoutMs: 30_000 })).config.workloads.length, 12_000)
})

t.test('readMeshFileIsolated: an abort stops the parse with the signal reason', async (t) => {
  const ac = new AbortController()
  const p = readMeshFileIsolated(join(FIXTURES, 'example-c.yaml'), { signal: ac.signal, inlineBelowBytes: 0 })
  ac.abort(new Error('stopping'))
  await t.rejects(p, { message: 'stopping' })
})

t.test('bytes: parseMeshFile takes a Uint8Array too', async (t) => {
  const r = parseMeshFile(new TextEncoder().encode(`workloads:\n${workload('é')}\n`), 'm.yaml')
  t.equal(r.config.workloads[0]?.uid, 'é')
})
