/**
 * Values many resources of a push repeat, held once: port maps and short strings.
 *
 * Port maps as the model holds them: built compactly, shared when equal, frozen.
 *
 * An object whose keys are small integers (`{80: 8080}`) gets a fast elements store sized past its largest key:
 * about 1.2 KB for that one pair, and every workload of a push carries one per service it is an endpoint of
 * (100k workloads: ~120 MB). Built by JSON.parse the same map takes ~200 B (dictionary elements), and nearly
 * every workload of a service has the same map, so equal maps are one shared object. Shared means immutable:
 * the maps are frozen (a write throws in our strict-mode modules instead of changing another resource).
 */
import type { PortMap } from './mesh.js'

/** Distinct maps remembered for sharing (a bound on memory; maps already shared stay valid when it is cleared). */
const SHARED_LIMIT = 4096
const shared = new Map<string, PortMap>()
const singles = new Map<number, PortMap>()

/** The port map of `servicePort -> targetPort` pairs (a later pair for the same port wins, as in an object). */
export function portMapOf(pairs: readonly (readonly [number, number])[]): PortMap {
  // One pair (nearly every map): found by its two numbers, no text built.
  if (pairs.length === 1) {
    const [servicePort, targetPort] = pairs[0]!
    const key = servicePort * 0x1_0000_0000 + targetPort // both ports of a model are below 2^32
    let one = singles.get(key)
    if (one === undefined) {
      one = Object.freeze(JSON.parse(`{"${servicePort}":${targetPort}}`) as PortMap)
      if (singles.size >= SHARED_LIMIT) singles.clear()
      singles.set(key, one)
    }
    return one
  }
  let json = ''
  for (const [servicePort, targetPort] of pairs) json += `${json ? ',' : ''}"${servicePort}":${targetPort}`
  const known = shared.get(json)
  if (known) return known
  const made = Object.freeze(JSON.parse(`{${json}}`) as PortMap)
  // Full (a mesh of unusually many distinct maps): start over, so maps seen from now on are shared again.
  if (shared.size >= SHARED_LIMIT) shared.clear()
  shared.set(json, made)
  return made
}

/** Distinct strings remembered by intern(). */
const INTERN_LIMIT = 8192
const interned = new Map<string, string>()

/**
 * One shared copy of a string that many resources repeat (a namespace, a node, a service account): a push decodes
 * each workload's copy as a string of its own. Bounded like the shared port maps.
 */
export function intern(text: string): string {
  if (text.length > 64) return text // long strings are rarely repeated: not worth remembering
  const known = interned.get(text)
  if (known !== undefined) return known
  if (interned.size >= INTERN_LIMIT) interned.clear()
  interned.set(text, text)
  return text
}
