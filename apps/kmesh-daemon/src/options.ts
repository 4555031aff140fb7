/**
 * The daemon's options: object types owned by the daemon, and their defaults in this one place. The command line
 * (cli.ts) only maps argv and the environment onto these; a program embedding the daemon passes them directly.
 * resolveOptions() applies the defaults and checks what must hold whatever the options came from.
 */
import type { Logger, LogFormat } from './log.js'

export interface XdsOptions {
  address: string
  caFile?: string | undefined
  tokenFile?: string | undefined
  insecure?: boolean | undefined
  /** the largest response accepted (@kmesh-ts/xds-client maxReceiveMessageBytes; default 200 MiB) */
  maxMessageBytes?: number | undefined
}

/** Where IPsec node info comes from: a directory of files, or the KmeshNodeInfo custom resources. */
export type NodeInfoSourceOption =
  | { source: 'dir'; dir: string }
  | { source: 'kubernetes'; kubeconfig?: string | undefined; namespace: string; deleteOnExit: boolean }

/** IPsec between nodes (src/ipsec). */
export interface IpsecOptions {
  keyFile: string
  nodeInfo: NodeInfoSourceOption
  /** false with --ipsec-allow-plaintext: Kmesh's rules only. */
  rejectPlaintext: boolean
  addresses: string[]
  podCIDRs: string[]
  netns?: string | undefined
  encryptDevices: string[]
  decryptDevices: string[]
}

/**
 * Node mode (src/node): the connect programs are attached once at `cgroup` (the node's cgroup v2 root in production,
 * with allowRootCgroup) and no network namespace is enrolled at start; the pod reconciler enrols the pods of this
 * node the enrolment rule selects (src/node/enrol-rule.ts), and the kmesh-cni plugin asks it at pod creation.
 */
export interface NodeModeOptions {
  /** A kubeconfig file; without it the pod's service account (in-cluster config). */
  kubeconfig?: string | undefined
  /** Take Istio ambient's `istio.io/dataplane-mode=ambient` as ours too (default false). */
  acceptAmbient?: boolean | undefined
  /** The host's /proc, where pod network namespaces are looked for (default /proc). */
  procRoot?: string | undefined
  /** Every pod is looked at again this often (default 60 s; 0: never). */
  resyncMs?: number | undefined
  /** The kmesh-cni socket the plugin asks at pod creation; undefined or '' for none. */
  cniSocket?: string | undefined
  /** The node's CNI binary dir (e.g. /opt/cni/bin): with cniConfDir, kmesh-cni is installed there and chained. */
  cniBinDir?: string | undefined
  /** The node's CNI configuration dir (e.g. /etc/cni/net.d). */
  cniConfDir?: string | undefined
}

export interface DaemonOptions {
  /** Local mode: the mesh file. Exactly one of meshFile and xds is set. */
  meshFile?: string | undefined
  /** Cluster mode: istiod. */
  xds?: XdsOptions | undefined
  /** The cgroup v2 directory whose connects are served. */
  cgroup: string
  pinRoot?: string | undefined
  stateDir?: string | undefined
  nodeName?: string | undefined
  /** Where nodeName came from, for the start-up log. */
  nodeNameSource?: '--node' | 'NODE_NAME' | undefined
  /** Not read by the daemon: the flags whose values came from environment variables (cli.ts), for the log. */
  fromEnvironment?: Record<string, string> | undefined
  /**
   * This node's network (ztunnel's NETWORK): only service VIPs and workload addresses on it, or on no network
   * (`''`), become frontends, and endpoints on other networks are not used. Default `''`.
   */
  network?: string | undefined
  netnsPath?: string | undefined
  /** Map name -> max entries, for the maps whose size may be chosen. */
  mapSizes?: Record<string, number> | undefined
  /** Per map: the most entries it may grow to online (the maps grow past mapSizes, which is a floor). */
  mapSizeMax?: Record<string, number> | undefined
  /** On close, leave programs attached and maps pinned (a restart takes them over). */
  keepPinned?: boolean | undefined
  /** Local mode: re-read the mesh file when it changes. */
  watch?: boolean | undefined
  /** The logger; default: one on stderr with logFormat and logLevel. */
  log?: Logger | undefined
  logFormat?: LogFormat | undefined
  logLevel?: string | undefined
  /** HOST:PORT of the admin endpoint, or '' for none. */
  adminAddress?: string | undefined
  /** IPsec between nodes. */
  ipsec?: IpsecOptions | undefined
  /** Node mode: enrol the pods of this node (needs nodeName; no netnsPath). */
  nodeMode?: NodeModeOptions | undefined
  /** How long to wait for another daemon's lock on the pin root and state dir (0: fail at once). */
  lockWaitMs?: number | undefined
  /** Attach even where another kmesh-ts daemon's connect programs are attached. */
  forceCgroup?: boolean | undefined
  /** Accept the cgroup v2 root (node deployments attach there on purpose). */
  allowRootCgroup?: boolean | undefined
  /** The connect object to load instead of @kmesh-ts/bpf-progs' cgroup_sock.o (a custom build; upgrade tests). */
  connectObjectPath?: string | undefined
  /** How the authorization XDP program is attached: generic (default; a RST always reaches the client) or native. */
  authzXdpMode?: 'generic' | 'native' | undefined
  /** A changed mesh file is applied once it stayed the same (size, mtime, inode) this long. */
  reloadSettleMs?: number | undefined
  /** ...or at the latest this long after the first unapplied change, even under continuous edits. */
  reloadMaxWaitMs?: number | undefined
  /** Mesh files larger than this are refused before they are parsed. */
  meshFileMaxBytes?: number | undefined
  /** Connection telemetry from the kernel (sockops, src/telemetry); default true. */
  telemetry?: boolean | undefined
  /** HOST:PORT of the metrics listener (/metrics, /stats/prometheus, /status/metric), or '' for none. */
  metricsAddress?: string | undefined
  /** The access log at start: off, text (Kmesh's `accesslog:` line) or json; switchable at runtime. */
  accessLog?: 'off' | 'text' | 'json' | undefined
  /** Not a flag: where access-log lines go (default stdout, as Kmesh prints them). */
  accessLogOut?: { write(s: string): unknown } | undefined
  /** Not a flag: the directories treated as cgroup v2 roots (default: the cgroup2 mounts). Tests name a child. */
  cgroup2Roots?: string[] | undefined
}

/** The defaults of the daemon's own options. */
const DAEMON_DEFAULTS = {
  adminAddress: '127.0.0.1:15200',
  pinRoot: '/sys/fs/bpf/kmesh-ts',
  stateDir: '/var/lib/kmesh-ts',
  logFormat: 'text' as LogFormat,
  logLevel: 'info',
  lockWaitMs: 0,
  reloadSettleMs: 1000,
  reloadMaxWaitMs: 5000,
  meshFileMaxBytes: 64 * 1024 * 1024,
  keepPinned: false,
  watch: true,
  forceCgroup: false,
  allowRootCgroup: false,
  network: '',
  telemetry: true,
  metricsAddress: '127.0.0.1:15020',
  accessLog: 'off' as 'off' | 'text' | 'json',
} satisfies Partial<DaemonOptions>

/** Every default, the nested ones included (what --help prints). */
export const DEFAULTS = { ...DAEMON_DEFAULTS, nodeInfoNamespace: 'kmesh-system' }

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error'] as const

type Defaulted = keyof typeof DAEMON_DEFAULTS

/** Options with every default applied. */
export type ResolvedOptions = Omit<DaemonOptions, Defaulted | 'mapSizes'> & {
  [K in Defaulted]-?: NonNullable<DaemonOptions[K]>
} & { mapSizes: Record<string, number> }

/** Applies the defaults; throws a TypeError naming the option when the options cannot describe a daemon. */
export function resolveOptions(options: DaemonOptions): ResolvedOptions {
  if (!options.meshFile === !options.xds)
    throw new TypeError(
      'kmesh-daemon: give exactly one of the options "meshFile" (local mode) and "xds" (cluster mode)',
    )
  if (!options.cgroup) throw new TypeError('kmesh-daemon: the option "cgroup" is required')
  const out: Record<string, unknown> = { ...options, mapSizes: options.mapSizes ?? {} }
  for (const [key, value] of Object.entries(DAEMON_DEFAULTS)) if (out[key] === undefined) out[key] = value
  const resolved = out as ResolvedOptions
  if (resolved.reloadMaxWaitMs < resolved.reloadSettleMs)
    throw new TypeError(
      `kmesh-daemon: "reloadMaxWaitMs" (${resolved.reloadMaxWaitMs}) must not be shorter than "reloadSettleMs" (${resolved.reloadSettleMs})`,
    )
  if (resolved.nodeMode && !resolved.nodeName)
    throw new TypeError('kmesh-daemon: the option "nodeMode" needs "nodeName": its pods are those of this node')
  if (resolved.nodeMode && resolved.netnsPath)
    throw new TypeError(
      'kmesh-daemon: the options "nodeMode" and "netnsPath" exclude each other: node mode enrols pods, not one netns',
    )
  if (resolved.ipsec && !resolved.nodeName)
    throw new TypeError('kmesh-daemon: the option "ipsec" needs "nodeName": it names this node\'s node info')
  return resolved
}
