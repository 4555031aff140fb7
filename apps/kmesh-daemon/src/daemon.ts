/**
 * Wiring: data path + ids + one workload processor, fed by a mesh file (local mode) or by istiod (cluster
 * mode), plus the admin endpoint. Runs until stop(), then detaches and unpins (or leaves everything pinned
 * with keepPinned). Each part started goes on a stack of closers that a stop, or a failed start, unwinds.
 */
import { existsSync } from 'node:fs'
import { hostname } from 'node:os'
import { join } from 'node:path'
import { ensureBpffs } from '@kmesh-ts/bpf-maps'
import type { Server } from 'node:http'
import { XdsClient, istioNode, istioNodeFromEnv, type XdsNode } from '@kmesh-ts/xds-client'
import { Dataplane } from './dataplane/dataplane.js'
import { IdTable } from './ids/id-table.js'
import { LocalMesh } from './sources/local-mesh.js'
import { ClusterMesh } from './sources/cluster/cluster-mesh.js'
import { WorkloadProcessor } from './processor/processor.js'
import { startAdmin } from './admin.js'
import { IpsecController, nodeInfoSourceFor } from './ipsec/index.js'
import { checkCgroup } from './dataplane/cgroup-guard.js'
import { lockDir } from './system/dir-lock.js'
import { DEFAULTS, type DaemonOptions } from './cli.js'
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
  /** SIGHUP: re-reads the mesh file (local mode) and the IPsec key file. */
  reload(): Promise<void>
  /** Stops everything this daemon started, in reverse order; the locks go last. Idempotent. */
  stop(): Promise<void>
}

/** What a stop unwinds, last started first. */
type Closer = () => unknown

/**
 * Starts a daemon. Order matters for what a failure may touch: the locks first (a second daemon on the same pin
 * root stops there, having touched nothing), then the admin port (a busy port fails before any kernel state),
 * the cgroup check, and only then the data path. A start that fails after taking over pins a previous daemon
 * kept leaves them pinned: traffic keeps flowing as it did before this start.
 */
export async function startDaemon(options: DaemonOptions, log: Logger, { signal }: { signal?: AbortSignal } = {}): Promise<RunningDaemon> {
  const closers: Closer[] = []
  const unwind = async (): Promise<void> => {
    for (const close of closers.reverse()) {
      try { await close() } catch (err) { log.error({ err: (err as Error).message }, 'stopping: a clean-up step failed') }
    }
    closers.length = 0
  }
  try {
    return await startInOrder(options, log, closers, unwind, signal)
  } catch (err) {
    await unwind()
    throw err
  }
}

async function startInOrder(options: DaemonOptions, log: Logger, closers: Closer[], unwind: () => Promise<void>, signal: AbortSignal | undefined): Promise<RunningDaemon> {
  ensureBpffs()
  const lockWaitMs = options.lockWaitMs ?? DEFAULTS.lockWaitMs
  for (const dir of [options.pinRoot, options.stateDir]) {
    if (lockWaitMs) log.info({ dir, lockWaitMs }, 'waiting for the lock on this directory if another daemon holds it')
    const lock = await lockDir(dir, lockWaitMs, signal)
    closers.push(() => lock.release())
  }
  log.info({ pinRoot: options.pinRoot, stateDir: options.stateDir }, 'holding the pin root and state dir')
  logIdentity(options, log)

  let current: RunningDaemon | undefined
  let readyNow = false
  if (options.adminAddress) {
    const admin = await startAdmin(options.adminAddress, {
      ready: () => readyNow,
      dump: () => ({
        mode: options.xds ? 'cluster' : 'local', ready: readyNow,
        maps: current?.dataplane.mirrorCounts() ?? {},
        ...(current?.cluster ? { resources: current.cluster.counts } : {}),
        ...(current?.mesh ? { meshFile: current.mesh.status() } : {}),
      }),
    })
    closers.push(() => new Promise((resolve) => admin.close(resolve)))
    log.info({ url: admin.url }, 'admin endpoint listening')
    current = { admin } as RunningDaemon
  }

  signal?.throwIfAborted()
  const check = checkCgroup({ cgroupPath: options.cgroup, pinRoot: options.pinRoot, allowRoot: options.allowRootCgroup ?? false, force: options.forceCgroup ?? false, roots: options.cgroup2Roots })
  if (check.foreign.length) log.warn({ cgroup: options.cgroup, programs: check.foreign.map((p) => `${p.id}:${p.name || '?'}`) }, 'other programs are attached to the connect hooks of this cgroup; they run beside ours')
  for (const f of check.forcedBeside) log.warn({ cgroup: options.cgroup, ids: f.ids, pinRoot: f.pinRoot }, '--force-cgroup: attaching beside another kmesh-ts daemon\'s connect programs; the first attached decides each connect')

  const tookOver = existsSync(join(options.pinRoot, 'links', 'connect4'))
  const ids = new IdTable(join(options.stateDir, 'ids.json'))
  const dataplane = await Dataplane.start({ pinRoot: options.pinRoot, cgroupPath: options.cgroup, netnsPath: options.netnsPath, mapSizes: options.mapSizes, log })
  // Until the daemon is up, a failure leaves pins it took over in place; once up, a stop does what the operator asked.
  let up = false
  closers.push(() => {
    const keepPinned = options.keepPinned || (!up && tookOver)
    dataplane.close({ keepPinned })
    log.info({ keepPinned }, keepPinned ? 'stopped; programs stay attached and maps pinned' : 'stopped; programs detached and maps unpinned')
  })
  const processor = new WorkloadProcessor(dataplane.writer, ids, options.nodeName)
  const source = options.xds ? startCluster(options, processor, log) : startLocal(options, processor, log)
  closers.push(source.close)
  void source.ready.then((ok) => { readyNow = ok })

  let ipsec: IpsecController | undefined
  if (options.ipsec) {
    const { nodeInfo, ...ipsecOptions } = options.ipsec
    const ipsecLog = log.child({ component: 'ipsec' })
    ipsec = IpsecController.start({ ...ipsecOptions, nodeInfoSource: nodeInfoSourceFor(nodeInfo, options.nodeName!, ipsecLog), node: { name: options.nodeName!, addresses: options.ipsec.addresses, podCIDRs: options.ipsec.podCIDRs }, pinRoot: options.pinRoot, log: ipsecLog })
    // IPsec rules are removed on every stop, --keep-pinned included: they are not part of the pinned data path.
    // The KmeshNodeInfo object stays unless --node-info-delete-on-exit (node-info-k8s.ts says why).
    closers.push(() => ipsec!.close())
  }

  let stopping: Promise<void> | undefined
  const daemon: RunningDaemon = {
    dataplane, ids, ipsec, admin: current?.admin,
    mesh: source.mesh, cluster: source.cluster, xds: source.xds,
    ready: source.ready,
    isReady: () => readyNow,
    reload: async () => {
      ipsec?.reloadKey()
      if (source.mesh) await source.mesh.reload()
    },
    stop: () => (stopping ??= unwind()),
  }
  current = daemon
  up = true
  return daemon
}

/** Says where the node name and the xDS node identity come from: flags, the downward API, or the host name. */
function logIdentity(options: DaemonOptions, log: Logger): void {
  const fields: Record<string, unknown> = { node: options.nodeName ?? null, nodeFrom: options.nodeNameSource ?? 'none (no --node, no NODE_NAME): Strict and Failover rank without a locality' }
  if (options.xds) fields.xdsNodeFrom = downwardApi() ? 'POD_NAME, POD_NAMESPACE, INSTANCE_IP, NODE_NAME' : `--node or the host name (${hostname()})`
  log.info(fields, 'node identity')
}

interface MeshSource {
  mesh?: LocalMesh | undefined
  cluster?: ClusterMesh | undefined
  xds?: XdsClient | undefined
  ready: Promise<boolean>
  close(): Promise<void>
}

function startLocal(options: DaemonOptions, processor: WorkloadProcessor, log: Logger): MeshSource {
  const mesh = new LocalMesh({
    file: options.meshFile!, processor, log,
    settleMs: options.reloadSettleMs ?? DEFAULTS.reloadSettleMs,
    maxWaitMs: options.reloadMaxWaitMs ?? DEFAULTS.reloadMaxWaitMs,
    maxBytes: options.meshFileMaxBytes ?? DEFAULTS.meshFileMaxBytes,
  })
  if (options.watch) mesh.watch()
  return { mesh, ready: mesh.reload().then((r) => r.ok), close: async () => { await mesh.close() } }
}

function startCluster(options: DaemonOptions, processor: WorkloadProcessor, log: Logger): MeshSource {
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
  return { cluster, xds: client, ready, close: async () => { firstReady(false); await client.close() } }
}

function downwardApi(): boolean {
  return Boolean(process.env.POD_NAME && process.env.POD_NAMESPACE && process.env.INSTANCE_IP && process.env.NODE_NAME)
}

/** From the downward API when it is there (a DaemonSet pod), else from --node and the host name. */
function nodeIdentity(options: DaemonOptions): XdsNode {
  if (downwardApi()) return istioNodeFromEnv()
  const name = options.nodeName ?? hostname()
  return istioNode({ podIp: '127.0.0.1', podName: `kmesh-ts-${name}`, podNamespace: 'kmesh-system', nodeName: name })
}
