/**
 * Cluster mode: istiod's delta pushes drive the same workload processor as mesh files. Each response is
 * applied whole or not at all; resources the processor cannot apply (a full map, more services per workload
 * than the backend record holds) are handed back as rejections, which the client sends as one NACK, while the
 * rest of the push is applied. The order of arrival does not matter: the processor always works from the
 * complete stores, so services that arrive after their workloads give the same maps as the reverse.
 */
import type { Added, Authorization, ChangeBatch, Rejection, Address } from '@kmesh-ts/xds-client'
import { ADDRESS_TYPE_URL } from '@kmesh-ts/xds-client'
import { compactWrites, type WorkloadProcessor } from '../processor/processor.js'
import { serviceFromXds, workloadFromXds, UnappliableResource } from './xds-convert.js'
import type { MeshConfig, Service, Workload } from '../mesh-file/index.js'
import type { Logger } from '../log.js'

interface Stores {
  workloads: Map<string, Workload>
  services: Map<string, Service>
}

export class ClusterMesh {
  private stores: Stores = { workloads: new Map(), services: new Map() }
  private readonly policies = new Map<string, Authorization>()

  constructor(private readonly processor: WorkloadProcessor, private readonly log: Logger) {}

  get counts(): { workloads: number; services: number; policies: number } {
    return { workloads: this.stores.workloads.size, services: this.stores.services.size, policies: this.policies.size }
  }

  /** The handler given to XdsClient: resolves with the resources it could not apply. */
  handle = (batch: ChangeBatch): Rejection[] => {
    if (batch.typeUrl !== ADDRESS_TYPE_URL) return this.handlePolicies(batch.added, batch.removed)
    const rejections: Rejection[] = []
    const converted: { name: string; kind: 'workload' | 'service'; value: Workload | Service; isNew: boolean }[] = []
    for (const r of batch.added as Added<Address>[]) {
      try {
        if (r.value.workload) converted.push({ name: r.name, kind: 'workload', value: workloadFromXds(r.value.workload), isNew: !this.stores.workloads.has(r.name) })
        else converted.push({ name: r.name, kind: 'service', value: serviceFromXds(r.value.service), isNew: !this.stores.services.has(r.name) })
      } catch (err) {
        if (!(err instanceof UnappliableResource)) throw err
        rejections.push({ name: r.name, reason: err.message })
      }
    }
    const candidate = (skipNew: boolean): Stores => {
      const next: Stores = { workloads: new Map(this.stores.workloads), services: new Map(this.stores.services) }
      for (const c of converted) {
        if (skipNew && c.isNew) continue
        if (c.kind === 'workload') next.workloads.set(c.name, c.value as Workload)
        else next.services.set(c.name, c.value as Service)
      }
      for (const r of batch.removed) {
        if (r.kind === 'workload') next.workloads.delete(r.name)
        else if (r.kind === 'service') next.services.delete(r.name)
      }
      return next
    }
    try {
      this.commit(candidate(false), batch.nonce)
      return rejections
    } catch (err) {
      const reason = (err as Error).message
      // Keep updates and removals, refuse what would have grown the maps.
      const grown = converted.filter((c) => c.isNew)
      try {
        if (grown.length === 0) throw err
        this.commit(candidate(true), batch.nonce)
        return [...rejections, ...grown.map((c) => ({ name: c.name, reason }))]
      } catch {
        this.log.error({ nonce: batch.nonce, err: reason }, 'push not applied; the last good state stays in force')
        return [...rejections, ...converted.map((c) => ({ name: c.name, reason })), ...batch.removed.map((r) => ({ name: r.name, reason }))]
      }
    }
  }

  private commit(next: Stores, nonce: string): void {
    const config: MeshConfig = { workloads: [...next.workloads.values()], services: [...next.services.values()], policies: [] }
    const { intent, writes } = this.processor.apply(config)
    this.stores = next
    for (const w of intent.warnings) this.log.warn({ nonce }, w)
    this.log.info({ nonce, workloads: next.workloads.size, services: next.services.size, writes: compactWrites(writes) }, 'push applied')
  }

  private handlePolicies(added: Added<Authorization>[], removed: { name: string }[]): Rejection[] {
    for (const p of added) this.policies.set(p.name, p.value)
    for (const r of removed) this.policies.delete(r.name)
    if (added.length) this.log.warn({ policies: this.policies.size }, 'authorization policies received and kept; not enforced yet')
    return []
  }
}
