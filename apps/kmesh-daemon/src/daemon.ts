/**
 * Wiring: data path + ids + one workload processor, fed by a mesh file (local mode) or by istiod (cluster
 * mode), plus the admin endpoint. Runs until close(), then detaches and unpins (or leaves everything pinned
 * with keepPinned). Each part started goes on a disposal stack that a close, or a failed start, unwinds.
 */
import { existsSync } from 'node:fs'
import { hostname } from 'node:os'
import { join } from 'node:path'
import { ensureBpffs } from '@kmesh-ts/bpf-maps'
import type { Server } from 'node:http'
import { XdsClient, istioNode, istioNodeFromEnv, type XdsClientEvent, type XdsNode } from '@kmesh-ts/xds-client'
import { Dataplane } from './dataplane/dataplane.js'
import { AuthzDataplane } from './dataplane/authz-dataplane.js'
import { type DataPathPart, requireKernelFeatures } from './dataplane/kernel-features.js'
import { AuthzProcessor } from './processor/authz.js'
import { IdTable } from './ids/id-table.js'
import { LocalMesh, type ReloadResult } from './sources/local-mesh.js'
import { ClusterMesh } from './sources/cluster/cluster-mesh.js'
import { WorkloadProcessor } from './processor/processor.js'
import { KERNEL_LIMITS } from './processor/kernel-fit.js'
import { startAdmin, XdsStatusRecorder } from './admin.js'
import { adminSourceOf, isReady, metricsSourceOf, type DaemonView } from './admin/daemon-source.js'
import { createObservability, startMetricsServer, type Observability } from './metrics/index.js'
import { IpsecController, nodeInfoSourceFor } from './ipsec/index.js'
import { startNodeMode, type NodeMode } from './node/node-mode.js'
import { checkCgroup } from './dataplane/cgroup-guard.js'
import { lockDir } from './system/dir-lock.js'
import { resolveOptions, type DaemonOptions, type ResolvedOptions } from './options.js'
import { DisposalStack } from './util/disposal-stack.js'
import { Telemetry } from './telemetry/index.js'
import { WaypointTlv } from './waypoint/waypoint-tlv.js'
import { createLogger, type Logger } from './log.js'

/** A running daemon: started by startDaemon(), released by close() or `await using`. */
export interface Daemon extends AsyncDisposable {
  /** The options in force, defaults applied. */
  readonly options: ResolvedOptions
  readonly dataplane: Dataplane
  readonly ids: IdTable
  /** local mode */
  readonly mesh?: LocalMesh | undefined
  /** cluster mode */
  readonly cluster?: ClusterMesh | undefined
  readonly xds?: XdsClient | undefined
  /** Connection telemetry (options.telemetry); undefined when off or when it could not attach (logged). */
  readonly telemetry?: Telemetry | undefined
  /** IPsec between nodes (options.ipsec) */
  readonly ipsec?: IpsecController | undefined
  /** node mode: the pod reconciler and the kmesh-cni socket */
  readonly node?: NodeMode | undefined
  readonly admin?: (Server & { url: string }) | undefined
  /** The metrics listener (options.metricsAddress), when it started. */
  readonly metrics?: (Server & { url: string }) | undefined
  /** The metrics registry, the telemetry sinks and the access log. */
  readonly observability: Observability
  /** Resolves once the first mesh was applied (true) or refused (false). */
  readonly ready: Promise<boolean>
  isReady(): boolean
  /** SIGHUP: re-reads the mesh file (local mode) and the IPsec key file. */
  reload(): Promise<void>
  /** Stops everything this daemon started, in reverse order; the locks go last. Idempotent. */
  close(): Promise<void>
}

/** What the admin endpoint and the metrics read while the parts start one after another (admin/daemon-source.ts). */
type StatusView = DaemonView & { source?: MeshSource }

/**
 * Starts a daemon; resolves once the data path is attached and the mesh source started (`ready` tells when the
 * first mesh is in the maps). Order matters for what a failure may touch: the locks first (a second daemon on the
 * same pin root stops there, having touched nothing), then the admin port (a busy port fails before any kernel
 * state), the cgroup check, and only then the data path. Each part goes on a disposal stack; a failed start (or
 * an abort through `signal`) unwinds it. A start that fails after taking over pins a previous daemon kept leaves
 * them pinned: traffic keeps flowing as it did before this start.
 */
export async function startDaemon(input: DaemonOptions, { signal }: { signal?: AbortSignal } = {}): Promise<Daemon> {
  const options = resolveOptions(input)
  const log = options.log ?? createLogger({ format: options.logFormat, level: options.logLevel })
  const stack = new DisposalStack()
  try {
    return await startInOrder(options, log, stack, signal)
  } catch (err) {
    await unwind(stack, log)
    throw err
  }
}

function unwind(stack: DisposalStack, log: Logger): Promise<void> {
  return stack.disposeAll((err) => log.error({ err: (err as Error).message }, 'stopping: a clean-up step failed'))
}

async function startInOrder(
  options: ResolvedOptions,
  log: Logger,
  stack: DisposalStack,
  signal: AbortSignal | undefined,
): Promise<Daemon> {
  ensureBpffs()
  for (const dir of [options.pinRoot, options.stateDir]) {
    if (options.lockWaitMs)
      log.info(
        { dir, lockWaitMs: options.lockWaitMs },
        'waiting for the lock on this directory if another daemon holds it',
      )
    const lock = await lockDir(dir, options.lockWaitMs, signal)
    stack.defer(() => lock.release())
  }
  log.info({ pinRoot: options.pinRoot, stateDir: options.stateDir }, 'holding the pin root and state dir')
  logIdentity(options, log)

  const view: StatusView = {
    mode: options.xds ? 'cluster' : 'local',
    ready: false,
    nodeName: options.nodeName,
    pinRoot: options.pinRoot,
    xds: options.xds ? new XdsStatusRecorder() : undefined,
  }
  // Metrics and the access log (src/metrics): sinks for the telemetry records, read by the admin endpoint too.
  const observability = createObservability({
    source: metricsSourceOf(view),
    workload: (uid) => view.processor?.held.workloads.get(uid),
    service: (key) => view.processor?.held.services.has(key) ?? true,
    accessLog: options.accessLog,
    accessLogOut: options.accessLogOut,
  })
  view.observability = observability
  stack.defer(() => observability.close())
  let admin: (Server & { url: string }) | undefined
  if (options.adminAddress) {
    const server = await startAdmin(options.adminAddress, adminSourceOf(view, log))
    admin = server
    stack.defer(() => new Promise((resolve) => server.close(resolve)))
    log.info({ url: server.url }, 'admin endpoint listening')
  }
  const metricsServer = await startMetrics(options, observability, log)
  if (metricsServer) stack.defer(() => new Promise((resolve) => metricsServer.close(resolve)))

  signal?.throwIfAborted()
  const check = checkCgroup({
    cgroupPath: options.cgroup,
    pinRoot: options.pinRoot,
    allowRoot: options.allowRootCgroup,
    force: options.forceCgroup,
    roots: options.cgroup2Roots,
  })
  if (check.foreign.length)
    log.warn(
      { cgroup: options.cgroup, programs: check.foreign.map((p) => `${p.id}:${p.name || '?'}`) },
      'other programs are attached to the connect hooks of this cgroup; they run beside ours',
    )
  for (const f of check.forcedBeside)
    log.warn(
      { cgroup: options.cgroup, ids: f.ids, pinRoot: f.pinRoot },
      "--force-cgroup: attaching beside another kmesh-ts daemon's connect programs; the first attached decides each connect",
    )

  // Before anything is loaded: a kernel that lacks a feature is refused naming it (docs/kernel-support.md).
  requireKernelFeatures(
    new Set<DataPathPart>([
      'connect',
      'authz',
      ...(options.telemetry ? (['telemetry'] as const) : []),
      ...(options.ipsec ? (['ipsec'] as const) : []),
    ]),
  )
  const tookOver = existsSync(join(options.pinRoot, 'links', 'connect4'))
  const ids = new IdTable(join(options.stateDir, 'ids.json'))
  const dataplane = await Dataplane.start({
    pinRoot: options.pinRoot,
    cgroupPath: options.cgroup,
    netnsPath: options.netnsPath,
    objectPath: options.connectObjectPath,
    mapSizeMax: options.mapSizeMax,
    // Node mode enrols pods one by one (src/node); the daemon's own netns (the host's) stays unmanaged.
    enrolAtStart: !options.nodeMode,
    mapSizes: options.mapSizes,
    log,
  })
  view.dataplane = dataplane
  // Until the daemon is up, a failure leaves pins it took over in place; once up, a stop does what the operator asked.
  let up = false
  stack.defer(() => {
    const keepPinned = options.keepPinned || (!up && tookOver)
    dataplane.close({ keepPinned })
    log.info(
      { keepPinned },
      keepPinned ? 'stopped; programs stay attached and maps pinned' : 'stopped; programs detached and maps unpinned',
    )
  })
  const processor = new WorkloadProcessor({
    writer: dataplane.writer,
    ids,
    nodeName: options.nodeName,
    network: options.network,
  })
  view.processor = processor
  view.ids = ids
  const telemetry = startTelemetry(options, dataplane, processor, log)
  telemetry?.addSink(observability.sink)
  view.telemetry = telemetry
  if (telemetry) stack.defer(() => telemetry.close({ keepPinned: options.keepPinned || (!up && tookOver) }))
  const waypointTlv = startWaypointTlv(options, dataplane, log)
  if (waypointTlv) stack.defer(() => waypointTlv.close({ keepPinned: options.keepPinned || (!up && tookOver) }))
  // Authorization at XDP: compiled policies in their own maps; the program on the managed namespace's interfaces
  // (local mode with --netns; never on the host's own interfaces).
  const authzLog = log.child({ component: 'authz' })
  const authzDataplane = AuthzDataplane.start({ pinRoot: options.pinRoot, mode: options.authzXdpMode, log: authzLog })
  stack.defer(() => authzDataplane.close())
  if (options.netnsPath && !options.nodeMode) authzDataplane.attachNetns(options.netnsPath)
  const authz = new AuthzProcessor(authzDataplane.maps, { nodeName: options.nodeName })
  view.authz = authz
  view.authzDataplane = authzDataplane
  const observe: SourceObservers = {
    meshFileResult: (r) => observability.daemon.meshFileResult(r),
    xdsEvent: (e) => {
      view.xds?.onEvent(e)
      observability.daemon.xdsEvent(e)
    },
    timed: (h) => observability.daemon.timedHandler(h),
  }
  const source = options.xds
    ? startCluster(options, processor, log, authz, observe)
    : startLocal(options, processor, log, authz, observe)
  view.source = source
  stack.defer(source.close)
  void source.ready.then((ok) => {
    view.ready = ok
  })

  let ipsec: IpsecController | undefined
  if (options.ipsec) {
    const { nodeInfo, ...ipsecOptions } = options.ipsec
    const ipsecLog = log.child({ component: 'ipsec' })
    const node = { name: options.nodeName!, addresses: options.ipsec.addresses, podCIDRs: options.ipsec.podCIDRs }
    const started = IpsecController.start({
      ...ipsecOptions,
      // Without --ipsec-decrypt-dev the node NICs are found: the devices of this node's addresses and default routes.
      discoverNics: ipsecOptions.decryptDevices.length === 0,
      nodeInfoSource: nodeInfoSourceFor(nodeInfo, node.name, ipsecLog),
      node,
      pinRoot: options.pinRoot,
      log: ipsecLog,
    })
    ipsec = started
    view.ipsec = started
    // IPsec rules are removed on every stop, --keep-pinned included: they are not part of the pinned data path.
    // The KmeshNodeInfo object stays unless --node-info-delete-on-exit (node-info-k8s.ts says why).
    stack.defer(() => started.close())
  }

  let node: NodeMode | undefined
  if (options.nodeMode) {
    const started = await startNodeMode({
      ...options.nodeMode,
      nodeName: options.nodeName!,
      cgroupPath: options.cgroup,
      // Authorization follows enrolment: the program on an enrolled pod's interfaces, off when it leaves.
      onEnrolment: (netns, enrolled, pod) => {
        try {
          if (enrolled) authzDataplane.attachNetns(netns)
          else authzDataplane.detachNetns(netns)
        } catch (err) {
          authzLog.warn({ pod, netns, err: (err as Error).message }, 'authorization not attached to the pod')
        }
        // IPsec follows enrolment too: tc_mark_encrypt on the host end of the pod's veth.
        try {
          if (enrolled) ipsec?.attachPod(netns)
          else ipsec?.detachPod(netns)
        } catch (err) {
          log.warn({ pod, netns, err: (err as Error).message }, 'ipsec: tc_mark_encrypt not attached to the pod veth')
        }
      },
      log,
    })
    node = started
    view.node = started
    stack.defer(() => started.close({ uninstall: !options.keepPinned }))
  }

  let closing: Promise<void> | undefined
  const close = (): Promise<void> => (closing ??= unwind(stack, log))
  up = true
  return {
    options,
    dataplane,
    ids,
    telemetry,
    ipsec,
    node,
    admin,
    metrics: metricsServer,
    observability,
    mesh: source.mesh,
    cluster: source.cluster,
    xds: source.xds,
    ready: source.ready,
    isReady: () => isReady(view),
    reload: async () => {
      ipsec?.reloadKey()
      if (source.mesh) await source.mesh.reload()
    },
    close,
    [Symbol.asyncDispose]: close,
  }
}

/**
 * Connection telemetry on the managed cgroup, after the data path (it shares its km_manage and km_sockstorage pins).
 * Observability only: a kernel that refuses the sockops program leaves the data path up, said in the log.
 */
function startTelemetry(
  options: ResolvedOptions,
  dataplane: Dataplane,
  processor: WorkloadProcessor,
  log: Logger,
): Telemetry | undefined {
  const telemetryLog = log.child({ component: 'telemetry' })
  if (!options.telemetry) {
    Telemetry.removeLeftover(options.pinRoot, telemetryLog)
    return undefined
  }
  try {
    return Telemetry.start({
      pinRoot: options.pinRoot,
      cgroupPath: options.cgroup,
      mapSizes: dataplane.capacities(),
      mesh: processor,
      log: telemetryLog,
    })
  } catch (err) {
    telemetryLog.error(
      { err: (err as Error).message },
      'connection telemetry could not start; the data path runs without it',
    )
    return undefined
  }
}

/**
 * The waypoint TLV (src/waypoint): connections redirected to a waypoint tell it the destination dialled. A kernel
 * that refuses it (sockmap links need >= 6.10) leaves the data path up without it, said in the log.
 */
function startWaypointTlv(options: ResolvedOptions, dataplane: Dataplane, log: Logger): WaypointTlv | undefined {
  try {
    return WaypointTlv.start({
      pinRoot: options.pinRoot,
      cgroupPath: options.cgroup,
      mapSizes: dataplane.capacities(),
      log,
    })
  } catch (err) {
    log.error(
      { err: (err as Error).message },
      'the waypoint TLV could not attach; connections to waypoints carry no original destination',
    )
    return undefined
  }
}

/** Says where the node name and the xDS node identity come from: flags, the downward API, or the host name. */
function logIdentity(options: ResolvedOptions, log: Logger): void {
  const fields: Record<string, unknown> = {
    node: options.nodeName ?? null,
    nodeFrom: options.nodeNameSource ?? 'none (no --node, no NODE_NAME): Strict and Failover rank without a locality',
    network: options.network,
  }
  if (options.xds)
    fields.xdsNodeFrom = downwardApi()
      ? 'POD_NAME, POD_NAMESPACE, INSTANCE_IP, NODE_NAME'
      : `--node or the host name (${hostname()})`
  log.info(fields, 'node identity')
}

/** Where the mesh sources report to the metrics and the admin endpoint. */
interface SourceObservers {
  meshFileResult(r: ReloadResult): void
  xdsEvent(e: XdsClientEvent): void
  timed<B extends { typeUrl: string }, R>(handler: (batch: B) => Promise<R>): (batch: B) => Promise<R>
}

/**
 * The metrics listener. A busy port is logged, not fatal (as Kmesh): metrics are observability, and a second
 * daemon on a test machine must not fail on the default port.
 */
async function startMetrics(
  options: ResolvedOptions,
  observability: Observability,
  log: Logger,
): Promise<(Server & { url: string }) | undefined> {
  if (!options.metricsAddress) return undefined
  try {
    const server = await startMetricsServer(options.metricsAddress, observability.registry)
    log.info({ url: server.url, paths: ['/metrics', '/stats/prometheus', '/status/metric'] }, 'metrics listening')
    return server
  } catch (err) {
    log.error({ err: (err as Error).message }, 'metrics listener not started; the daemon runs without it')
    return undefined
  }
}

interface MeshSource {
  mesh?: LocalMesh | undefined
  cluster?: ClusterMesh | undefined
  xds?: XdsClient | undefined
  ready: Promise<boolean>
  close(): Promise<void>
}

function startLocal(
  options: ResolvedOptions,
  processor: WorkloadProcessor,
  log: Logger,
  authz: AuthzProcessor,
  observe: SourceObservers,
): MeshSource {
  const mesh = new LocalMesh({
    onResult: observe.meshFileResult,
    file: options.meshFile!,
    processor,
    authz,
    log,
    settleMs: options.reloadSettleMs,
    maxWaitMs: options.reloadMaxWaitMs,
    maxBytes: options.meshFileMaxBytes,
  })
  if (options.watch) mesh.watch()
  return {
    mesh,
    ready: mesh.reload().then((r) => r.ok),
    close: async () => {
      await mesh.close()
    },
  }
}

function startCluster(
  options: ResolvedOptions,
  processor: WorkloadProcessor,
  log: Logger,
  authz: AuthzProcessor,
  observe: SourceObservers,
): MeshSource {
  const xds = options.xds!
  const cluster = new ClusterMesh(processor, log, authz)
  let firstReady: (ok: boolean) => void = () => {}
  const ready = new Promise<boolean>((resolve) => (firstReady = resolve))
  const client = new XdsClient({
    address: xds.address,
    node: nodeIdentity(options),
    handler: observe.timed(cluster.handle),
    convertAddress: ClusterMesh.convert,
    tls: xds.insecure ? 'insecure' : xds.caFile ? { caFile: xds.caFile } : undefined,
    tokenFile: xds.tokenFile,
    maxReceiveMessageBytes: xds.maxMessageBytes,
    // The kernel's limit, not the xDS package's: a service with more ports is refused (NACKed) while decoding.
    limits: { maxPortsPerService: KERNEL_LIMITS.portsPerService },
    // istiod resends everything on a reconnect: what the maps already hold is neither decoded nor recomputed.
    skipUnchanged: true,
    onEvent: (e) => {
      observe.xdsEvent(e)
      if (e.type === 'ready') {
        firstReady(true)
        log.info({ address: xds.address }, 'synced with istiod')
      } else if (e.type === 'nack')
        log.warn({ typeUrl: e.typeUrl, nonce: e.nonce, rejected: e.rejections.length }, `NACK: ${e.message}`)
      else if (e.type === 'disconnected')
        log[e.benign ? 'info' : 'warn'](
          { code: e.code, details: e.details, retryInMs: e.retryInMs },
          e.benign ? 'istiod closed the stream (routine); reconnecting' : 'istiod stream lost; reconnecting',
        )
      else if (e.type === 'error') log.error({ err: e.error.message, retryInMs: e.retryInMs }, 'xDS error')
      else if (e.type === 'connecting') log.info({ address: e.address, attempt: e.attempt }, 'connecting to istiod')
    },
  })
  return {
    cluster,
    xds: client,
    ready,
    close: async () => {
      firstReady(false)
      await client.close()
    },
  }
}

function downwardApi(): boolean {
  return Boolean(process.env.POD_NAME && process.env.POD_NAMESPACE && process.env.INSTANCE_IP && process.env.NODE_NAME)
}

/**
 * From the downward API when it is there (a DaemonSet pod), else from --node and the host name. The node's network
 * (--network or NETWORK) is announced as ztunnel announces its own.
 */
function nodeIdentity(options: ResolvedOptions): XdsNode {
  if (downwardApi()) {
    const node = istioNodeFromEnv()
    if (options.network) node.metadata = { ...node.metadata, NETWORK: options.network }
    return node
  }
  const name = options.nodeName ?? hostname()
  return istioNode({
    podIp: '127.0.0.1',
    podName: `kmesh-ts-${name}`,
    podNamespace: 'kmesh-system',
    nodeName: name,
    network: options.network,
  })
}
