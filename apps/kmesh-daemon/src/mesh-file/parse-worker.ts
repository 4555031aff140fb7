/**
 * Worker entry of readMeshFileIsolated: parses the bytes it is given and posts back the result or the
 * problems (plain data, so they survive the structured clone). Nothing else runs here.
 */
import { parentPort, workerData } from 'node:worker_threads'

import { parseMeshText } from './parse.js'

export interface ParseRequest {
  bytes: Uint8Array
  file: string
}

export type ParseReply =
  /**
   * The result as JSON text: a structured clone of 100k resources took seconds to rebuild on the main thread,
   * JSON.parse a fraction of that (the mesh model is plain JSON data; resources are compared as JSON anyway).
   */
  | { ok: true; json: string }
  | { ok: false; problems: unknown[]; total: number; totalIsLowerBound: boolean }
  | { ok: false; crash: string }

const { bytes, file } = workerData as ParseRequest
let reply: ParseReply
try {
  const { result, error } = parseMeshText(bytes, file)
  reply = error
    ? { ok: false, problems: error.problems, total: error.total, totalIsLowerBound: error.totalIsLowerBound }
    : { ok: true, json: JSON.stringify(result) }
} catch (err) {
  reply = { ok: false, crash: err instanceof Error ? `${err.name}: ${err.message}` : String(err) }
}
parentPort?.postMessage(reply)
