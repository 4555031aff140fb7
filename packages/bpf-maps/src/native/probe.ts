/**
 * What the running kernel's BPF supports, asked the way libbpf's feature probes ask it (load a minimal program or
 * create a minimal map and see whether the kernel accepts it), so a daemon can refuse to start naming the missing
 * feature instead of failing later with a verifier dump.
 */
import { errnoName } from './errors.js'
import { native } from './libbpf.js'

/** A probe's answer; `error` when the probe itself could not run (e.g. no privileges). */
export interface ProbeResult {
  supported: boolean
  error?: string
}

function answer(rc: number): ProbeResult {
  if (rc === 1) return { supported: true }
  if (rc === 0) return { supported: false }
  return { supported: false, error: errnoName(rc) }
}

/** BPF_PROG_TYPE_* (linux/bpf.h): can a program of this type be loaded? */
export function probeProgType(progType: number): ProbeResult {
  return answer(native.libbpf_probe_bpf_prog_type(progType, null) as number)
}

/** BPF_MAP_TYPE_*: can a map of this type be created? */
export function probeMapType(mapType: number): ProbeResult {
  return answer(native.libbpf_probe_bpf_map_type(mapType, null) as number)
}

/** BPF_FUNC_* from a program of BPF_PROG_TYPE_*: may that program type call the helper? */
export function probeHelper(progType: number, helperId: number): ProbeResult {
  return answer(native.libbpf_probe_bpf_helper(progType, helperId, null) as number)
}
