/**
 * Wiring for local mode: data path + ids + mesh file. Runs until the signal aborts, then detaches and unpins
 * (or leaves everything pinned with keepPinned).
 */
import { join } from 'node:path'
import { Dataplane } from './dataplane/dataplane.js'
import { IdTable } from './ids/id-table.js'
import { LocalMesh } from './local-mesh.js'
import { WorkloadProcessor } from './processor/processor.js'
import type { DaemonOptions } from './cli.js'
import type { Logger } from './log.js'

export interface RunningDaemon {
  dataplane: Dataplane
  mesh: LocalMesh
  ids: IdTable
  /** Resolves once the first load of the mesh file was applied (or refused). */
  ready: Promise<boolean>
  stop(): void
}

export async function startDaemon(options: DaemonOptions, log: Logger): Promise<RunningDaemon> {
  const ids = new IdTable(join(options.stateDir, 'ids.json'))
  const dataplane = await Dataplane.start({ pinRoot: options.pinRoot, cgroupPath: options.cgroup, netnsPath: options.netnsPath, mapSizes: options.mapSizes, log })
  const processor = new WorkloadProcessor(dataplane.writer, ids, options.nodeName)
  const mesh = new LocalMesh({ file: options.meshFile, processor, log })
  if (options.watch) mesh.watch()
  const ready = mesh.reload().then((r) => r.ok)
  let stopped = false
  return {
    dataplane,
    mesh,
    ids,
    ready,
    stop() {
      if (stopped) return
      stopped = true
      mesh.close()
      dataplane.close({ keepPinned: options.keepPinned })
      log.info({ keepPinned: options.keepPinned }, options.keepPinned ? 'stopped; programs stay attached and maps pinned' : 'stopped; programs detached and maps unpinned')
    },
  }
}
