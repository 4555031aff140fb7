/**
 * What the mesh says the kernel should hold, before any byte layout, computed from scratch: the reference that
 * the incremental engine (engine.ts) is checked against, and what tools such as `explain` use. Both go through
 * the per-resource derivations of resources.ts.
 */
import { MeshEngine } from './engine.js'
import type { MeshConfig } from '../model/index.js'
import type { IdTable } from '../ids/id-table.js'
import type { Intent } from './resources.js'

export type { Intent, ServiceIntent, BackendIntent } from './resources.js'

export interface IntentOptions {
  /** The node this daemon runs on: its first workload is the client whose locality ranks endpoints. */
  nodeName?: string | undefined
  /** The node's network (`''`: none): which VIPs are frontends and which endpoints backends (network.ts). */
  network?: string | undefined
}

export function computeIntent(config: MeshConfig, ids: IdTable, options: IntentOptions = {}): Intent {
  return new MeshEngine({ ids, nodeName: options.nodeName, network: options.network }).load(config).fullIntent()
}
