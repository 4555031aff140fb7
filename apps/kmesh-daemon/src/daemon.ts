/**
 * Wiring: data path + ids + one workload processor, fed by a mesh file (local mode) or by istiod (cluster
 * mode), plus the admin endpoint. Runs until stop(), then detaches and unpins (or leaves everything pinned
 * with keepPinned).
 */
import { hostname } from 'node:os'
import { join } from 'node:path'
import type { Server } from 'node:http'
import { XdsClient, istioNode, istioNodeFromEnv, type XdsNode } from '@kmesh-ts/xds-client'
import { Dataplane } from './dataplane/dataplane.js'
import { IdTable } from './ids/id-table.js'
import { LocalMesh } from './local-mesh.js'
import { ClusterMesh } from './cluster/cluster-mesh.js'
import { WorkloadProcessor } from './processor/processor.js'
import { startAdmin } from './admin.js'
import { IpsecController, nodeInfoSourceFor } from './ipsec/index.js'
import type { DaemonOptions } from './cli.js'
import type { Logger } from './log.js'

export interface RunningDaemon {
  dataplane: Dataplane
  /** local mode */
  mesh?: LocalMesh | undefined
  /** cluster mode */
  cluster?: ClusterMesh | undefined
  xds?: XdsClient | undefined
  ids: IdTable
  /** IPsec between nodes (--ipsec-key-file) */
  ipsec?: IpsecController | undefined
  admin?: (Server & { url: string }) | undefined
  /** Resolves once the first mesh was applied (true) or refused (false). */
  ready: Promise<boolean>
  isReady(): boolean
  stop(): Promise<void>
}

export async function startDaemon(options: DaemonOptions, log: Logger): Promise<RunningDaemon> {
  const ids = new IdTable(join(options.stateDir, 'ids.json'))
  const dataplane = await Dataplane.start({ pinRoot: options.pinRoot, cgroupPath: options.cgroup, netnsPath: options.netnsPath, mapSizes: options.mapSizes, log })
  const processor = new WorkloadProcessor(dataplane.writer, ids, options.nodeName)
  let readyNow = false
  let daemon: RunningDaemon | undefined
  try {
    const started = options.xds ? startCluster(options, processor, dataplane, ids, log) : startLocal(options, processor, dataplane, ids, log)
    daemon = started
    void started.ready.then((ok) => { readyNow = ok })
    started.isReady = () => readyNow
    if (options.adminAddress) {
      started.admin = await startAdmin(options.adminAddress, {
        ready: () => readyNow,
        dump: () => ({ mode: options.xds ? 'cluster' : 'local', ready: readyNow, maps: dataplane.mirrorCounts(), ...(started.cluster ? { resources: started.cluster.counts } : {}) }),
      })
      log.info({ url: started.admin.url }, 'admin endpoint listening')
    }
  } catch (err) {
    // Stop the mesh source too (xDS client, file watcher), or it would keep the process alive writing to closed maps.
    if (daemon) await daemon.stop().catch(() => {})
    else dataplane.close({ keepPinned: false })
    throw err
  }
  if (options.ipsec) {
    let ipsec: IpsecController
    try {
      const { nodeInfo, ...ipsecOptions } = options.ipsec
      const ipsecLog = log.child({ component: 'ipsec' })
      ipsec = IpsecController.start({ ...ipsecOptions, nodeInfoSource: nodeInfoSourceFor(nodeInfo, options.nodeName!, ipsecLog), node: { name: options.nodeName!, addresses: options.ipsec.addresses, podCIDRs: options.ipsec.podCIDRs }, pinRoot: options.pinRoot, log: ipsecLog })
    } catch (err) {
      await daemon.stop()
      throw err
    }
    daemon.ipsec = ipsec
    const stopRest = daemon.stop
    // IPsec rules are removed on every stop, --keep-pinned included: they are not part of the pinned data path.
    // The KmeshNodeInfo object stays unless --node-info-delete-on-exit (node-info-k8s.ts says why).
    daemon.stop = async () => { await ipsec.close(); await stopRest() }
  }
  return daemon
}

function stopper(options: DaemonOptions, dataplane: Dataplane, log: Logger, closeSource: () => Promise<void> | void, self: () => RunningDaemon): () => Promise<void> {
  let stopped = false
  return async () => {
    if (stopped) return
    stopped = true
    await closeSource()
    const admin = self().admin
    if (admin) await new Promise((resolve) => admin.close(resolve))
    dataplane.close({ keepPinned: options.keepPinned })
    log.info({ keepPinned: options.keepPinned }, options.keepPinned ? 'stopped; programs stay attached and maps pinned' : 'stopped; programs detached and maps unpinned')
  }
}

function startLocal(options: DaemonOptions, processor: WorkloadProcessor, dataplane: Dataplane, ids: IdTable, log: Logger): RunningDaemon {
  const mesh = new LocalMesh({ file: options.meshFile!, processor, log })
  if (options.watch) mesh.watch()
  const daemon: RunningDaemon = {
    dataplane, mesh, ids,
    ready: mesh.reload().then((r) => r.ok),
    isReady: () => false,
    stop: stopper(options, dataplane, log, async () => { await mesh.close() }, () => daemon),
  }
  return daemon
}

function startCluster(options: DaemonOptions, processor: WorkloadProcessor, dataplane: Dataplane, ids: IdTable, log: Logger): RunningDaemon {
  const xds = options.xds!
  const cluster = new ClusterMesh(processor, log)
  let firstReady: (ok: boolean) => void = () => {}
  const ready = new Promise<boolean>((resolve) => (firstReady = resolve))
  const client = new XdsClient({
    address: xds.address,
    node: nodeIdentity(options),
    handler: cluster.handle,
    tls: xds.insecure ? 'insecure' : xds.caFile ? { caFile: xds.caFile } : undefined,
    tokenFile: xds.tokenFile,
    onEvent: (e) => {
      if (e.type === 'ready') { firstReady(true); log.info({ address: xds.address }, 'synced with istiod') }
      else if (e.type === 'nack') log.warn({ typeUrl: e.typeUrl, nonce: e.nonce, rejected: e.rejections.length }, `NACK: ${e.message}`)
      else if (e.type === 'disconnected') log[e.benign ? 'info' : 'warn']({ code: e.code, details: e.details, retryInMs: e.retryInMs }, e.benign ? 'istiod closed the stream (routine); reconnecting' : 'istiod stream lost; reconnecting')
      else if (e.type === 'error') log.error({ err: e.error.message, retryInMs: e.retryInMs }, 'xDS error')
      else if (e.type === 'connecting') log.info({ address: e.address, attempt: e.attempt }, 'connecting to istiod')
    },
  })
  const daemon: RunningDaemon = {
    dataplane, cluster, xds: client, ids, ready,
    isReady: () => false,
    stop: stopper(options, dataplane, log, async () => { firstReady(false); await client.close() }, () => daemon),
  }
  return daemon
}

/** From the downward API when it is there (a DaemonSet pod), else from --node and the host name. */
function nodeIdentity(options: DaemonOptions): XdsNode {
  if (process.env.POD_NAME && process.env.POD_NAMESPACE && process.env.INSTANCE_IP && process.env.NODE_NAME) return istioNodeFromEnv()
  const name = options.nodeName ?? hostname()
  return istioNode({ podIp: '127.0.0.1', podName: `kmesh-ts-${name}`, podNamespace: 'kmesh-system', nodeName: name })
}
