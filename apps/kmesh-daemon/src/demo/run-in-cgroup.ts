/** Runs the probe client as a process inside a cgroup, so the cgroup's connect programs see its connects. */
import { fileURLToPath } from 'node:url'
import { execIn, type ExecPlace } from '../system/cgroup-exec.js'
import type { ProbeResult, ProbeTarget } from './probe.js'

// The built script, whether this module runs from dist/ or from src/ under a TypeScript loader (tests).
const PROBE = fileURLToPath(new URL('../../dist/demo/probe-client.js', import.meta.url))

export async function probeFrom(place: ExecPlace, targets: ProbeTarget[], count: number): Promise<ProbeResult> {
  const out = await execIn(place, [process.execPath, PROBE, JSON.stringify({ targets, count })])
  try {
    return JSON.parse(out) as ProbeResult
  } catch {
    throw new Error(`probe client printed no result: ${out}`)
  }
}
