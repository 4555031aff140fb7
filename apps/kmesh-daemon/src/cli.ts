/**
 * `kmesh-daemon` command line: maps argv and the environment onto the daemon's options (options.ts, which owns
 * the types and the defaults), with errors that name the flag, or the variable when the value came from the
 * environment. The flags and their variables are declared in cli-flags.ts. A flag not given stays undefined: the
 * daemon applies the default.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util'
import { mapSpecs } from '@kmesh-ts/bpf-maps/codecs'
import { FLAGS, optionsHelp, valuesFromEnv } from './cli-flags.js'
import { DEFAULT_CNI_SOCKET } from './cni/install.js'
import {
  DEFAULTS,
  LOG_LEVELS,
  type DaemonOptions,
  type IpsecOptions,
  type NodeInfoSourceOption,
  type NodeModeOptions,
} from './options.js'

export { DEFAULTS, LOG_LEVELS, type DaemonOptions }

export const HELP = `kmesh-daemon — kernel-native service-mesh data plane (kmesh-ts)

Usage:
  kmesh-daemon --mesh-file FILE --cgroup DIR [options]      local mode
  kmesh-daemon --xds-address HOST:PORT --cgroup DIR [options] cluster mode (istiod)
  kmesh-daemon explain [--pin-root DIR] [--state-dir DIR] [--json] HOST:PORT   explain a connect
  kmesh-daemon help explain | explain --help                 help of the explain command
  kmesh-daemon dump [--only LIST] [--bpf [--pin-root DIR]]   a running daemon's config dump or decoded maps
  kmesh-daemon log-level [LEVEL | LOGGER:LEVEL,…]            print or set a running daemon's log levels
  kmesh-daemon accesslog [off|text|json]                     print or switch a running daemon's access log
  kmesh-daemon version                                       this version and the running daemon's
  kmesh-daemon help dump                                     help of dump, log-level, accesslog, version
  kmesh-daemon --version                                     print the version

Local mode: reads FILE (ztunnel's local config format: workloads, services, policies), loads the BPF
connect programs, attaches them to the cgroup v2 directory DIR, enrols it, and writes the load-balancing
maps. Every connect() to a service VIP from a process in DIR is rewritten in the kernel to a backend chosen
by Random, Strict or Failover load balancing. The file is watched; an edit is applied as a difference, and
a bad file is refused with the file, entry and key named while the last good state stays in force.
A changed file is applied once it has stayed the same for --reload-settle, and at the latest after
--reload-max-wait under continuous edits; write it with an atomic rename (write a temporary file in the
same directory, then mv it over the mesh file) so a half-written file is never read. An empty file (or
one with only comments, or "workloads:" with no value) is refused: write "workloads: []" to mean it.
Only regular files (or symlinks to one) up to --mesh-file-max-bytes are read. SIGHUP re-reads the mesh
file and the IPsec key file.

Cluster mode: subscribes to istiod's workload API (Address and Authorization, delta xDS) and feeds the same
processor; resources that cannot be applied (a full map, too many services for one workload) are NACKed
with the reason while the rest of the push is applied. Authorization policies (from the mesh file or
istiod) are enforced at XDP on the managed namespace (--netns) or, in node mode, on every enrolled pod.

Options (each with its environment variable, for a DaemonSet's env; a flag given on the command line wins
over its variable; an empty variable counts as unset; booleans take true/false/1/0, lists are comma-separated;
a variable of the other mode's flags is ignored, so one DaemonSet environment serves both modes):
${optionsHelp()}

Signals: SIGTERM and SIGINT stop (see --keep-pinned); SIGHUP re-reads the mesh file and the IPsec key file.
Every signal is logged.

Explain: reads the pinned maps under --pin-root (a running daemon's, or ones it left pinned) and prints
what the kernel does with a connect to HOST:PORT now: every outcome (backend, waypoint, untouched, errno)
with its exact probability, and why the service's other endpoints are not candidates. Names come from
<state-dir>/ids.json when it is readable; --json prints the explanation as JSON.

Connect semantics: a VIP with no usable endpoint (or a port the service does not serve) makes connect()
fail at once with ECONNREFUSED, where upstream Kmesh lets it pass to the unroutable VIP.
`

export class UsageError extends Error {}

type Value = string | boolean | string[] | undefined
type Values = Record<string, Value>

/** parseArgs' options, from the flag table. */
const PARSE_OPTIONS: NonNullable<ParseArgsConfig['options']> = Object.fromEntries(
  FLAGS.map((f) => [
    f.name,
    { type: f.type, ...(f.multiple ? { multiple: true } : {}), ...(f.short ? { short: f.short } : {}) },
  ]),
)
const MODE_OF = new Map(FLAGS.filter((f) => f.mode).map((f) => [f.name, f.mode!]))

/**
 * Where each given flag's value came from, so that an error names what the operator wrote: `--lock-wait` for
 * the command line, `KMESH_LOCK_WAIT` for the environment.
 */
class Given {
  constructor(
    readonly values: Values,
    private readonly fromEnv: Map<string, string>,
  ) {}

  /** `{ '--flag': 'VARIABLE' }` for every value the environment gave, or undefined when it gave none. */
  environment(): Record<string, string> | undefined {
    return this.fromEnv.size ? Object.fromEntries([...this.fromEnv].map(([f, env]) => [`--${f}`, env])) : undefined
  }

  /** `--flag`, or the variable that gave it. */
  who(flag: string): string {
    return this.fromEnv.get(flag) ?? `--${flag}`
  }

  /** `--flag VALUE`, or `VARIABLE=VALUE`. */
  whoValue(flag: string, value: string): string {
    const env = this.fromEnv.get(flag)
    return env ? `${env}=${value}` : `--${flag} ${value}`
  }

  str(flag: string): string | undefined {
    return this.values[flag] as string | undefined
  }

  list(flag: string): string[] {
    return (this.values[flag] as string[] | undefined) ?? []
  }
}

/** argv, then the environment for what argv did not give (cli-flags.ts): the flags' values and their sources. */
function readFlags(argv: string[], env: Record<string, string | undefined>): Given {
  let parsed: Values
  try {
    parsed = parseArgs({ args: argv, options: PARSE_OPTIONS, strict: true, allowPositionals: false }).values as Values
  } catch (err) {
    throw new UsageError(`${(err as Error).message}; see --help`)
  }
  const fail = (message: string): never => {
    throw new UsageError(message)
  }
  // A mode chosen on the command line is not overridden by the other mode's variable (XDS_ADDRESS is in every
  // Kmesh DaemonSet; `--mesh-file` given beside it means local mode).
  const argvMode = parsed['mesh-file'] !== undefined || parsed['xds-address'] !== undefined
  const skip = (flag: string): boolean =>
    parsed[flag] !== undefined || (argvMode && (flag === 'mesh-file' || flag === 'xds-address'))
  const values: Values = { ...parsed }
  const fromEnv = new Map<string, string>()
  for (const [flag, { value, env: name }] of valuesFromEnv(skip, env, fail)) {
    values[flag] = value
    fromEnv.set(flag, name)
  }
  if (fromEnv.has('mesh-file') && fromEnv.has('xds-address'))
    fail(
      `${fromEnv.get('mesh-file')} and ${fromEnv.get('xds-address')} are both set: give exactly one (local or cluster mode), or choose with --mesh-file or --xds-address`,
    )
  // Variables of the other mode's flags are left out: one DaemonSet environment serves both modes.
  const mode = values['mesh-file'] !== undefined ? 'local' : values['xds-address'] !== undefined ? 'cluster' : undefined
  for (const [flag, flagMode] of MODE_OF)
    if (fromEnv.has(flag) && mode !== undefined && flagMode !== mode) {
      values[flag] = undefined
      fromEnv.delete(flag)
    }
  return new Given(values, fromEnv)
}

export function parseCli(
  argv: string[],
  env: Record<string, string | undefined> = process.env,
): DaemonOptions | 'help' | 'version' {
  const given = readFlags(argv, env)
  const values = given.values
  if (values.help) return 'help'
  if (values.version) return 'version'
  if (!values['mesh-file'] === !values['xds-address'])
    throw new UsageError('give exactly one of --mesh-file (local mode) and --xds-address (cluster mode); see --help')
  for (const flag of ['xds-ca-file', 'xds-token-file', 'xds-insecure', 'xds-max-message-bytes'] as const) {
    if (values[flag] !== undefined && !values['xds-address'])
      throw new UsageError(`${given.who(flag)} needs --xds-address; see --help`)
  }
  if (values['xds-insecure'] && values['xds-ca-file'])
    throw new UsageError(`${given.who('xds-insecure')} and ${given.who('xds-ca-file')} exclude each other`)
  if (!values.cgroup) throw new UsageError('--cgroup is required; see --help')
  const logFormat = given.str('log-format')
  if (logFormat !== undefined && logFormat !== 'text' && logFormat !== 'json')
    throw new UsageError(`${given.who('log-format')} must be text or json, got ${logFormat}`)
  const logLevel = given.str('log-level')
  if (logLevel !== undefined && !(LOG_LEVELS as readonly string[]).includes(logLevel))
    throw new UsageError(`${given.who('log-level')} must be one of ${LOG_LEVELS.join(', ')}, got ${logLevel}`)
  const duration = (flag: string): number | undefined => {
    const text = given.str(flag)
    return text === undefined ? undefined : durationOf(given.whoValue(flag, text), text)
  }
  const reloadSettleMs = duration('reload-settle')
  const reloadMaxWaitMs = duration('reload-max-wait')
  const settle = reloadSettleMs ?? DEFAULTS.reloadSettleMs
  const maxWait = reloadMaxWaitMs ?? DEFAULTS.reloadMaxWaitMs
  if (maxWait < settle)
    throw new UsageError(
      `${given.who('reload-max-wait')} (${maxWait} ms) must not be shorter than ${given.who('reload-settle')} (${settle} ms)`,
    )
  if (values['mesh-file-max-bytes'] !== undefined && !values['mesh-file'])
    throw new UsageError(`${given.who('mesh-file-max-bytes')} needs --mesh-file; see --help`)
  const bytesOf = (flag: string): number | undefined => {
    const text = given.str(flag)
    const n = text === undefined ? undefined : Number(text)
    if (text !== undefined && (!/^\d+$/.test(text) || n! < 1 || !Number.isSafeInteger(n)))
      throw new UsageError(`${given.whoValue(flag, text)}: expected a positive number of bytes`)
    return n
  }
  const meshFileMaxBytes = bytesOf('mesh-file-max-bytes')
  const xdsMaxMessageBytes = bytesOf('xds-max-message-bytes')
  const nodeName = given.str('node')
  const xdsAddress = given.str('xds-address')
  return {
    meshFile: given.str('mesh-file'),
    xds: xdsAddress
      ? {
          address: xdsAddress,
          caFile: given.str('xds-ca-file'),
          tokenFile: given.str('xds-token-file'),
          insecure: (values['xds-insecure'] as boolean | undefined) ?? false,
          maxMessageBytes: xdsMaxMessageBytes,
        }
      : undefined,
    cgroup: given.str('cgroup')!,
    pinRoot: given.str('pin-root'),
    stateDir: given.str('state-dir'),
    nodeName,
    nodeNameSource: nodeName === undefined ? undefined : given.who('node') === '--node' ? '--node' : 'NODE_NAME',
    fromEnvironment: given.environment(),
    network: given.str('network'),
    netnsPath: given.str('netns'),
    mapSizes: parseMapSizes(given, 'map-size'),
    mapSizeMax: parseMapSizes(given, 'map-size-max'),
    authzXdpMode: parseXdpMode(given),
    keepPinned: values['keep-pinned'] as boolean | undefined,
    watch: values['no-watch'] ? false : undefined,
    logFormat,
    logLevel,
    adminAddress: given.str('admin-address'),
    metricsAddress: given.str('metrics-address'),
    accessLog: accessLogMode(given.str('access-log'), () => given.who('access-log')),
    ipsec: parseIpsec(given),
    nodeMode: parseNodeMode(given, duration),
    lockWaitMs: duration('lock-wait'),
    forceCgroup: values['force-cgroup'] as boolean | undefined,
    allowRootCgroup: values['allow-root-cgroup'] as boolean | undefined,
    reloadSettleMs,
    reloadMaxWaitMs,
    meshFileMaxBytes,
  }
}

function parseIpsec(given: Given): IpsecOptions | undefined {
  const v = given.values
  const flags = [
    'node-info-dir',
    'node-info-source',
    'kubeconfig',
    'node-info-namespace',
    'node-info-delete-on-exit',
    'ipsec-allow-plaintext',
    'ipsec-address',
    'ipsec-pod-cidr',
    'ipsec-netns',
    'ipsec-encrypt-dev',
    'ipsec-decrypt-dev',
  ]
  if (!given.str('ipsec-key-file')) {
    // --kubeconfig serves node mode too.
    const stray = flags.find((f) => v[f] !== undefined && !(f === 'kubeconfig' && v['node-mode']))
    if (stray) throw new UsageError(`${given.who(stray)} needs --ipsec-key-file; see --help`)
    return undefined
  }
  const nodeInfo = parseNodeInfoSource(given)
  if (!given.str('node'))
    throw new UsageError(
      `--ipsec-key-file needs --node NAME (or NODE_NAME in the environment): it names this node's ${nodeInfo.source === 'dir' ? 'node-info file' : 'KmeshNodeInfo object'}`,
    )
  if (!given.list('ipsec-address').length) throw new UsageError('--ipsec-key-file needs at least one --ipsec-address')
  if (!given.list('ipsec-pod-cidr').length) throw new UsageError('--ipsec-key-file needs at least one --ipsec-pod-cidr')
  return {
    keyFile: given.str('ipsec-key-file')!,
    nodeInfo,
    rejectPlaintext: !v['ipsec-allow-plaintext'],
    addresses: given.list('ipsec-address'),
    podCIDRs: given.list('ipsec-pod-cidr'),
    netns: given.str('ipsec-netns'),
    encryptDevices: given.list('ipsec-encrypt-dev'),
    decryptDevices: given.list('ipsec-decrypt-dev'),
  }
}

/** --node-mode and its flags (src/node): the pods of --node are enrolled by the rule. */
function parseNodeMode(given: Given, duration: (flag: string) => number | undefined): NodeModeOptions | undefined {
  const v = given.values
  const flags = [
    'node-accept-ambient',
    'node-resync',
    'proc-root',
    'cni-socket',
    'cni-bin-dir',
    'cni-conf-dir',
  ] as const
  if (!v['node-mode']) {
    const stray = flags.find((f) => v[f] !== undefined)
    if (stray) throw new UsageError(`${given.who(stray)} needs --node-mode; see --help`)
    return undefined
  }
  if (!given.str('node'))
    throw new UsageError(`${given.who('node-mode')} needs --node NAME (or NODE_NAME): its pods are those of this node`)
  if (given.str('netns') !== undefined)
    throw new UsageError(
      `${given.who('node-mode')} and ${given.who('netns')} exclude each other: node mode enrols pods`,
    )
  const cniBinDir = given.str('cni-bin-dir')
  const cniConfDir = given.str('cni-conf-dir')
  if ((cniBinDir === undefined) !== (cniConfDir === undefined))
    throw new UsageError(
      `${given.who(cniBinDir === undefined ? 'cni-conf-dir' : 'cni-bin-dir')} needs ${cniBinDir === undefined ? '--cni-bin-dir' : '--cni-conf-dir'} too: the plugin is installed into both or neither`,
    )
  return {
    kubeconfig: given.str('kubeconfig'),
    acceptAmbient: v['node-accept-ambient'] as boolean | undefined,
    resyncMs: duration('node-resync'),
    procRoot: given.str('proc-root'),
    cniSocket: given.str('cni-socket') ?? DEFAULT_CNI_SOCKET,
    cniBinDir,
    cniConfDir,
  }
}

/** --node-info-source and the flags of each source; the default follows the mode (see HELP). */
function parseNodeInfoSource(given: Given): NodeInfoSourceOption {
  const v = given.values
  const dir = given.str('node-info-dir')
  const source_ = given.str('node-info-source')
  if (source_ !== undefined && source_ !== 'dir' && source_ !== 'kubernetes')
    throw new UsageError(`${given.who('node-info-source')} must be dir or kubernetes, got ${source_}`)
  const source = source_ ?? (dir !== undefined ? 'dir' : v['xds-address'] ? 'kubernetes' : undefined)
  if (source === undefined)
    throw new UsageError(
      '--ipsec-key-file needs --node-info-dir DIR (local mode) or --node-info-source kubernetes; see --help',
    )
  const kubeFlags = ['kubeconfig', 'node-info-namespace', 'node-info-delete-on-exit'] as const
  if (source === 'dir') {
    if (dir === undefined) throw new UsageError(`${given.who('node-info-source')} dir needs --node-info-dir DIR`)
    const stray = kubeFlags.find((f) => v[f] !== undefined && !(f === 'kubeconfig' && v['node-mode']))
    if (stray)
      throw new UsageError(
        `${given.who(stray)} needs --node-info-source kubernetes (node info comes from --node-info-dir here)`,
      )
    return { source, dir }
  }
  if (dir !== undefined)
    throw new UsageError(
      `${given.who('node-info-dir')} and ${given.who('node-info-source')} kubernetes exclude each other`,
    )
  const namespace = given.str('node-info-namespace') ?? DEFAULTS.nodeInfoNamespace
  if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(namespace) || namespace.length > 63)
    throw new UsageError(
      `${given.whoValue('node-info-namespace', namespace)}: must be a DNS-1123 label (lowercase letters, digits and -)`,
    )
  return {
    source,
    kubeconfig: given.str('kubeconfig'),
    namespace,
    deleteOnExit: (v['node-info-delete-on-exit'] as boolean | undefined) ?? false,
  }
}

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }

/** `30s`, `500ms`, `2m`, `1h` or `0` to milliseconds (undefined if not given); else a usage error naming the flag. */
export function parseDuration(flag: string, text: string | undefined): number | undefined {
  return text === undefined ? undefined : durationOf(`--${flag} ${text}`, text)
}

/** A duration; `subject` (`--flag VALUE` or `VARIABLE=VALUE`) opens the error message. */
function durationOf(subject: string, text: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(text)
  if (text === '0') return 0
  if (!m) throw new UsageError(`${subject}: expected a duration such as 500ms, 30s, 2m or 0`)
  const ms = Number(m[1]) * DURATION_UNITS[m[2]!]!
  if (!Number.isFinite(ms) || ms > 2 ** 31 - 1) throw new UsageError(`${subject}: at most 24 days`)
  return Math.round(ms)
}

function parseXdpMode(given: Given): 'generic' | 'native' | undefined {
  const mode = given.str('authz-xdp-mode')
  if (mode === undefined || mode === 'generic' || mode === 'native') return mode
  throw new UsageError(`${given.whoValue('authz-xdp-mode', mode)}: expected generic or native`)
}

function parseMapSizes(given: Given, flag: 'map-size' | 'map-size-max'): Record<string, number> {
  const known = new Set(Object.values(mapSpecs).map((s) => s.name))
  const out: Record<string, number> = {}
  for (const item of given.list(flag)) {
    const subject = given.whoValue(flag, item)
    const m = /^([a-z0-9_]+)=(\d+)$/.exec(item)
    if (!m) throw new UsageError(`${subject}: expected NAME=N, e.g. km_backend=200000`)
    const [, name, n] = m as unknown as [string, string, string]
    if (!known.has(name))
      throw new UsageError(`${subject}: unknown map ${name}; sizable maps: ${[...known].join(', ')}`)
    const size = Number(n)
    if (size < 1 || size > 0xffffffff) throw new UsageError(`${subject}: N must be between 1 and 4294967295`)
    out[name] = size
  }
  return out
}

/** --access-log: off, text or json. */
function accessLogMode(value: string | undefined, who: () => string): 'off' | 'text' | 'json' | undefined {
  if (value === undefined || value === 'off' || value === 'text' || value === 'json') return value
  throw new UsageError(`${who()} must be one of off, text, json, got ${value}`)
}
