/**
 * Cluster mode: istiod's delta pushes drive the same workload processor as mesh files, as deltas, so one
 * workload update costs what it touches. Each response is applied whole or not at all; resources the
 * processor cannot apply (a full map, more services per workload than the backend record holds) are handed
 * back as rejections, which the client sends as one NACK, while the rest of the push is applied. The order of
 * arrival does not matter: derivations always read the complete mesh, so services that arrive after their
 * workloads give the same maps as the reverse.
 */
import type { Added, Authorization, ChangeBatch, Rejection, Address } from '@kmesh-ts/xds-client'
import { ADDRESS_TYPE_URL } from '@kmesh-ts/xds-client'
import { compactWrites, roundMs, type WorkloadProcessor } from '../../processor/processor.js'
import type { MeshDelta } from '../../model/index.js'
import { driveYielding, endsSlice, nextTurn, SLICE } from '../../util/slices.js'
import { serviceFromXds, workloadFromXds } from './xds-convert.js'
import type { Service, Workload } from '../../model/index.js'
import type { Logger } from '../../log.js'
import { AuthzCompileError, type AuthzProcessor } from '../../processor/authz.js'

/** An Address as the model holds it (what ClusterMesh.convert makes of a decoded one). */
export type ModelAddress = { kind: 'workload'; value: Workload } | { kind: 'service'; value: Service }

type Converted = ModelAddress & { name: string; isNew: boolean }

export class ClusterMesh {
  private readonly policies = new Map<string, Authorization>()

  constructor(
    private readonly processor: WorkloadProcessor,
    private readonly log: Logger,
    private readonly authz?: AuthzProcessor | undefined,
  ) {}

  get counts(): { workloads: number; services: number; policies: number } {
    const { workloads, services } = this.processor.held
    return { workloads: workloads.size, services: services.size, policies: this.policies.size }
  }

  /**
   * What the xDS client turns each Address into as soon as it is decoded (its `convertAddress`): the mesh model,
   * so a big push is not held twice. A resource the kernel cannot take (UnappliableResource) is rejected by the
   * client with the message.
   */
  static convert(address: Address, name?: string): ModelAddress {
    // The resource name is the workload's uid (the client checked): the model keeps that one string, so the
    // client's record of the name, the model and its indexes share it instead of each holding a copy.
    return address.workload
      ? { kind: 'workload', value: workloadFromXds(address.workload, name) }
      : { kind: 'service', value: serviceFromXds(address.service!) }
  }

  /**
   * The handler given to XdsClient: returns the resources it could not apply. A big push is applied with a
   * macrotask every slice of work (deriving and writing), so the admin endpoint keeps answering (issue 5: do not
   * block the event loop for long).
   */
  handle = async (batch: ChangeBatch<ModelAddress>): Promise<Rejection[]> => {
    if (batch.typeUrl !== ADDRESS_TYPE_URL) return this.handlePolicies(batch.added, batch.removed)
    const started = performance.now()
    const converted: Converted[] = []
    const added = batch.added
    // The processor holds what was applied, by the same names (a workload's uid, a service's namespace/hostname).
    const held = this.processor.held
    for (let i = 0; i < added.length; i++) {
      if (i > 0 && endsSlice(i)) await nextTurn()
      const r = added[i]!
      const known = r.value.kind === 'workload' ? held.workloads : held.services
      converted.push({ name: r.name, ...r.value, isNew: !known.has(r.name) })
    }
    const removedWorkloads = batch.removed.filter((r) => r.kind === 'workload').map((r) => r.name)
    const removedServices = batch.removed.filter((r) => r.kind === 'service').map((r) => r.name)
    const deltaOf = (items: Converted[]): MeshDelta => ({
      upsertWorkloads: items.filter((c) => c.kind === 'workload').map((c) => c.value as Workload),
      upsertServices: items.filter((c) => c.kind === 'service').map((c) => c.value as Service),
      removeWorkloads: removedWorkloads,
      removeServices: removedServices,
    })
    try {
      await this.commit(deltaOf(converted), batch, started)
      return []
    } catch (err) {
      const reason = (err as Error).message
      // Keep updates and removals, refuse what would have grown the maps.
      const kept = converted.filter((c) => !c.isNew)
      try {
        if (kept.length === converted.length) throw err
        await this.commit(deltaOf(kept), batch, started)
        return converted.filter((c) => c.isNew).map((c) => ({ name: c.name, reason }))
      } catch (retryErr) {
        const retry = retryErr === err ? undefined : (retryErr as Error).message
        this.log.error(
          { nonce: batch.nonce, err: reason, ...(retry ? { retryErr: retry } : {}) },
          'push not applied; the last good state stays in force',
        )
        return [
          ...converted.map((c) => ({ name: c.name, reason })),
          ...batch.removed.map((r) => ({ name: r.name, reason })),
        ]
      }
    }
  }

  private async commit(delta: MeshDelta, batch: ChangeBatch<ModelAddress>, started: number): Promise<void> {
    const nonce = batch.nonce
    const converted = performance.now()
    // Small changes are applied in one turn; only a big one is worth a yield between deriving and writing.
    const size = (delta.upsertWorkloads?.length ?? 0) + (delta.upsertServices?.length ?? 0)
    const { warnings, writes, full, syscalls, computeMs, writeMs } =
      size > SLICE ? await this.processor.applyDeltaYielding(delta) : this.processor.applyDelta(delta)
    const authzChange = { upsertWorkloads: delta.upsertWorkloads, removeWorkloads: delta.removeWorkloads }
    const authzProblem = this.authz
      ? size > SLICE
        ? await driveYielding(this.authz.workloadsChangedSteps(authzChange))
        : this.authz.workloadsChanged(authzChange)
      : undefined
    if (authzProblem)
      this.log.error({ nonce, err: authzProblem }, 'authorization not recompiled; the last good set stays enforced')
    for (const w of warnings) this.log.warn({ nonce }, w)
    const ms = {
      convert: roundMs(converted - started),
      compute: roundMs(computeMs),
      write: roundMs(writeMs),
      total: roundMs(performance.now() - started),
    }
    this.log.info(
      {
        nonce,
        workloads: this.processor.held.workloads.size,
        services: this.processor.held.services.size,
        // resources istiod sent again with the bytes the maps already reflect (not decoded, not recomputed)
        unchanged: batch.unchanged,
        full,
        writes: compactWrites(writes),
        syscalls,
        ms,
      },
      'push applied',
    )
  }

  /**
   * Policies are compiled with the whole store as it would be: a set the kernel cannot hold is refused whole —
   * every policy of the push NACKed with the limit it passes — and the last good set stays enforced.
   */
  private handlePolicies(added: Added<Authorization>[], removed: { name: string }[]): Rejection[] {
    if (this.authz) {
      try {
        const prepared = this.authz.prepare({
          addPolicies: added.map((p) => p.value),
          removePolicies: removed.map((r) => r.name),
        })
        this.authz.commit(prepared)
      } catch (err) {
        if (!(err instanceof AuthzCompileError)) throw err
        this.authz.refused(err.message)
        this.log.error({ policies: added.length, err: err.message }, 'authorization policies refused (NACK)')
        return [...added, ...removed].map((p) => ({ name: p.name, reason: err.message }))
      }
    }
    for (const p of added) this.policies.set(p.name, p.value)
    for (const r of removed) this.policies.delete(r.name)
    if (added.length || removed.length)
      this.log.info(
        { policies: this.policies.size, enforced: this.authz !== undefined },
        this.authz ? 'authorization policies applied' : 'authorization policies kept; not enforced (no XDP data path)',
      )
    return []
  }
}
