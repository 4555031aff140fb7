/**
 * The workload processor: one mesh model in, the kernel maps out. Local mode (a mesh file) and cluster mode
 * (istiod) both call apply(); it computes the intent, lays out the records against what the kernel holds, and
 * has the writer apply only the difference. Ids are persisted before the maps reference them, and released
 * only after the maps no longer do.
 */
import { computeIntent, type Intent } from './intent.js'
import { imageOf } from './map-image.js'
import type { PlanSummary } from './plan.js'
import type { MapWriter } from '../dataplane/map-writer.js'
import type { IdTable } from '../ids/id-table.js'
import type { MeshConfig } from '../mesh-file/index.js'

export interface Applied {
  intent: Intent
  writes: PlanSummary
}

export class WorkloadProcessor {
  constructor(
    private readonly writer: MapWriter,
    private readonly ids: IdTable,
    private readonly nodeName?: string | undefined,
  ) {}

  /** Throws CapacityError (nothing written) or ApplyError (reverted); the last good state stays in force. */
  apply(config: MeshConfig): Applied {
    const intent = computeIntent(config, this.ids, { nodeName: this.nodeName })
    this.ids.save()
    const writes = this.writer.apply(imageOf(intent, this.writer.mirror))
    this.ids.retainOnly(intent.names)
    this.ids.save()
    return { intent, writes }
  }
}

export function compactWrites(w: PlanSummary): string {
  return Object.keys(w.put).map((m) => `${m} +${w.put[m as keyof PlanSummary['put']]}/-${w.delete[m as keyof PlanSummary['delete']]}`).join(', ')
}
