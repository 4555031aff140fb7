/**
 * Small ids for remote IPsec peers (1..65535, include/ipsec.h IPSEC_MAX_PEERS): the id goes into the mark of the
 * peer's IN states and of its inbound ESP (peerMark in @kmesh-ts/ipsec). A node keeps its id for as long as it is
 * present, so its states are not re-made on every reconcile; a node that leaves frees its id, and the lowest free id
 * goes to the next newcomer. Ids are local to this node and to this process: peers never see them.
 */
import { IPSEC_MAX_PEERS } from '@kmesh-ts/kernel-abi'

export class PeerIds {
  readonly #ids = new Map<string, number>()
  readonly #max: number

  constructor(max = IPSEC_MAX_PEERS) {
    this.#max = max
  }

  /**
   * The ids of `names` (remote node names): kept for those that had one, freed for those no longer present, the
   * lowest free ones for newcomers in the order given. Names beyond the id space get none (and are reported).
   */
  assign(names: Iterable<string>): { ids: ReadonlyMap<string, number>; unassigned: string[] } {
    const present = new Set(names)
    for (const name of [...this.#ids.keys()]) if (!present.has(name)) this.#ids.delete(name)
    const used = new Set(this.#ids.values())
    const unassigned: string[] = []
    let next = 1
    for (const name of present) {
      if (this.#ids.has(name)) continue
      while (used.has(next)) next++
      if (next > this.#max) {
        unassigned.push(name)
        continue
      }
      this.#ids.set(name, next)
      used.add(next)
    }
    return { ids: new Map(this.#ids), unassigned }
  }
}
