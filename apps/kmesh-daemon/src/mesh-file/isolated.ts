/**
 * readMeshFileIsolated: the file is opened and read on the main thread (async fs, bounded), and parsed
 * in a worker thread with a heap limit and a deadline. A pathological file then costs the worker, not
 * the daemon: a parse that runs too long is terminated, one that runs out of memory kills only the
 * worker, and both come back as a MeshFileError naming the file.
 */
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { Worker } from 'node:worker_threads'

import { sizeText } from './bounds.js'
import type { MeshFileResult } from './entries.js'
import { readMeshBytes } from './file.js'
import { parseMeshText } from './parse.js'
import type { ParseReply, ParseRequest } from './parse-worker.js'
import { MeshFileError, type MeshFileProblem } from './problems.js'

/** A 20 MB valid file parses in about 20 s on a slow machine; a bad one is refused in a few. */
export const DEFAULT_PARSE_TIMEOUT_MS = 60_000
/** Old-generation heap of the parse worker; a 20 MB valid file needs about 200 MB. */
export const DEFAULT_PARSE_HEAP_MB = 768

/**
 * Files smaller than this are parsed on the calling thread: at about 1 MB/s that blocks the event loop for well
 * under 100 ms, and it saves the worker's start-up (a fresh isolate) on every small edit.
 */
export const INLINE_PARSE_BELOW_BYTES = 64 * 1024

export interface IsolatedReadOptions {
  /** Files smaller than this are parsed on the calling thread. Default INLINE_PARSE_BELOW_BYTES; 0 always isolates. */
  inlineBelowBytes?: number
  /** Larger files are refused before they are read. Default 64 MiB. */
  maxBytes?: number
  /** The parse is stopped and the file refused after this long. Default DEFAULT_PARSE_TIMEOUT_MS. */
  timeoutMs?: number
  /** Stops the parse; the promise rejects with the signal's reason. */
  signal?: AbortSignal
  /** maxOldGenerationSizeMb of the worker. Default DEFAULT_PARSE_HEAP_MB. */
  maxHeapMb?: number
}

/** The compiled worker next to this module; under a TypeScript loader (tests) the source file. */
/**
 * The worker's entry: the sibling parse-worker.js when this module runs from dist/. When it runs from src/ (the
 * tests, through a TypeScript loader), the built dist/ worker: loaders registered with module.register() do not
 * reach worker threads on Node 20, so a .ts worker cannot start. The test command builds dist/ first.
 */
function workerUrl(): URL {
  const js = new URL('./parse-worker.js', import.meta.url)
  if (existsSync(fileURLToPath(js))) return js
  const built = new URL('../../dist/mesh-file/parse-worker.js', import.meta.url)
  if (existsSync(fileURLToPath(built))) return built
  return new URL('./parse-worker.ts', import.meta.url)
}

function refuse(file: string, message: string, cause?: unknown): MeshFileError {
  return new MeshFileError([{ file, entry: 'file', key: '', message }], cause === undefined ? {} : { cause })
}

export async function readMeshFileIsolated(path: string, options: IsolatedReadOptions = {}): Promise<MeshFileResult> {
  options.signal?.throwIfAborted()
  const bytes = await readMeshBytes(path, { maxBytes: options.maxBytes })
  return parseMeshBytesIsolated(bytes, path, options)
}

/** The parse of readMeshFileIsolated, for bytes already read: on this thread when small, else in a worker. */
export async function parseMeshBytesIsolated(
  bytes: Uint8Array,
  path: string,
  options: IsolatedReadOptions = {},
): Promise<MeshFileResult> {
  options.signal?.throwIfAborted()
  if (bytes.byteLength < (options.inlineBelowBytes ?? INLINE_PARSE_BELOW_BYTES)) {
    const { result, error } = parseMeshText(bytes, path)
    if (error) throw error
    return result as MeshFileResult
  }
  return parseInWorker(bytes, path, options)
}

/** Parses `bytes` in a fresh worker, which is always terminated before this settles. */
export function parseInWorker(
  bytes: Uint8Array,
  file: string,
  options: IsolatedReadOptions = {},
): Promise<MeshFileResult> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_PARSE_TIMEOUT_MS
  const heapMb = options.maxHeapMb ?? DEFAULT_PARSE_HEAP_MB
  return new Promise<MeshFileResult>((resolve, reject) => {
    const request: ParseRequest = { bytes, file }
    const worker = new Worker(workerUrl(), {
      workerData: request,
      transferList:
        bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength ? [bytes.buffer as ArrayBuffer] : [],
      resourceLimits: { maxOldGenerationSizeMb: heapMb, maxYoungGenerationSizeMb: 32, stackSizeMb: 4 },
      stdout: false,
      stderr: false,
    })
    let settled = false
    const finish = (fn: () => void): void => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      options.signal?.removeEventListener('abort', onAbort)
      void worker.terminate()
      fn()
    }
    const timer = setTimeout(() => {
      finish(() =>
        reject(
          refuse(
            file,
            `parsing took longer than ${timeoutMs} ms (timeoutMs) and was stopped; the file is ${sizeText(bytes.byteLength)}`,
          ),
        ),
      )
    }, timeoutMs)
    const onAbort = (): void => finish(() => reject(options.signal?.reason))
    options.signal?.addEventListener('abort', onAbort, { once: true })

    worker.on('message', (reply: ParseReply) => {
      finish(() => {
        if (reply.ok) resolve(JSON.parse(reply.json) as MeshFileResult)
        else if ('crash' in reply) reject(refuse(file, `the parser failed: ${reply.crash}`))
        else {
          reject(
            new MeshFileError(reply.problems as MeshFileProblem[], {
              total: reply.total,
              totalIsLowerBound: reply.totalIsLowerBound,
            }),
          )
        }
      })
    })
    worker.on('error', (err: NodeJS.ErrnoException) => {
      const why =
        err.code === 'ERR_WORKER_OUT_OF_MEMORY'
          ? `parsing ran out of memory (the parse worker's heap is limited to ${heapMb} MB)`
          : `the parser failed: ${err.message}`
      finish(() => reject(refuse(file, why, err)))
    })
    worker.on('exit', (code) => {
      finish(() => reject(refuse(file, `the parser exited (code ${code}) without an answer`)))
    })
  })
}
