/**
 * `kmesh-daemon` command line: maps argv and the environment onto the daemon's options (options.ts, which owns
 * the types and the defaults), with errors that name the flag. A flag not given stays undefined: the daemon
 * applies the default.
 */
import { parseArgs } from 'node:util'
import { mapSpecs } from '@kmesh-ts/bpf-maps/codecs'
import { DEFAULTS, LOG_LEVELS, type DaemonOptions, type IpsecOptions, type NodeInfoSourceOption } from './options.js'

export { DEFAULTS, LOG_LEVELS, type DaemonOptions }

const SIZABLE_MAPS = Object.values(mapSpecs).map((s) => `${s.name} (default ${s.defaultMaxEntries})`)

export const HELP = `kmesh-daemon — kernel-native service-mesh data plane (kmesh-ts)

Usage:
  kmesh-daemon --mesh-file FILE --cgroup DIR [options]      local mode
  kmesh-daemon --xds-address HOST:PORT --cgroup DIR [options] cluster mode (istiod)
  kmesh-daemon explain [--pin-root DIR] [--state-dir DIR] [--json] HOST:PORT   explain a connect
  kmesh-daemon help explain | explain --help                 help of the explain command
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
with the reason while the rest of the push is applied. Authorization policies are kept, not enforced yet.

Options:
  --mesh-file FILE        the mesh file (local mode)
  --xds-address HOST:PORT istiod's address (cluster mode), e.g. istiod.istio-system.svc:15012
  --xds-ca-file FILE      CA that signed istiod's certificate (default /var/run/secrets/istio/root-cert.pem)
  --xds-token-file FILE   bearer token sent to istiod, re-read on every reconnect
                          (e.g. /var/run/secrets/tokens/istio-token)
  --xds-insecure          plaintext gRPC (only for a local test server)
                          The node identity comes from POD_NAME, POD_NAMESPACE, INSTANCE_IP and NODE_NAME
                          when set (a DaemonSet's downward API), else from --node and the host name.
  --cgroup DIR            cgroup v2 directory whose processes are managed (required). Refused: the cgroup v2
                          root (unless --allow-root-cgroup), cgroup v1 and non-cgroup directories, and a cgroup
                          where another kmesh-ts daemon's connect programs are attached (unless --force-cgroup)
  --allow-root-cgroup     accept the cgroup v2 root (a node agent attaches there on purpose)
  --force-cgroup          attach even where another kmesh-ts daemon's connect programs are attached (both
                          then run; the first attached rewrites first)
  --pin-root DIR          bpffs directory for pinned maps and links (default ${DEFAULTS.pinRoot});
                          bpffs is mounted at /sys/fs/bpf if it is not. One daemon at a time owns a pin root
                          and a state dir: it holds a lock on both for its whole life
  --state-dir DIR         where stable ids are persisted (default ${DEFAULTS.stateDir})
  --lock-wait DURATION    wait this long for a daemon that holds the pin root or state dir (e.g. 30s, 500ms;
                          default 0: exit at once with rc 1, naming the holder's pid)
  --netns PATH            network namespace to enrol, e.g. /run/netns/NAME (default: the daemon's own)
  --node NAME             this node's name: its first workload's locality ranks endpoints for
                          Strict and Failover services (default: the NODE_NAME environment variable)
  --map-size NAME=N       capacity of a map, repeatable; maps: ${SIZABLE_MAPS.join(', ')}
  --keep-pinned           on SIGTERM/SIGINT leave programs attached and maps pinned, so traffic keeps
                          flowing; the next start takes over. Without it the daemon detaches and unpins.
  --no-watch              apply the file once and do not watch it (SIGHUP still re-reads it)
  --reload-settle DURATION  apply a changed mesh file once it stayed the same this long (default 1s)
  --reload-max-wait DURATION  under continuous edits apply at the latest this long after the first one (default 5s)
  --mesh-file-max-bytes N refuse larger mesh files before parsing them (default ${DEFAULTS.meshFileMaxBytes})
  --log-format text|json  log line format on stderr (default ${DEFAULTS.logFormat})
  --log-level LEVEL       ${LOG_LEVELS.join(', ')} (default ${DEFAULTS.logLevel})
  --admin-address H:P     admin endpoint: /healthz/ready, /debug/config_dump (default ${DEFAULTS.adminAddress};
                          '' disables it)
  --ipsec-key-file FILE   enable IPsec between nodes with Kmesh's key file (watched; a new SPI rotates)
  --node-info-source dir|kubernetes
                          where IPsec node info comes from (default: dir with --node-info-dir, else
                          kubernetes in cluster mode)
  --node-info-dir DIR     IPsec node info (KmeshNodeInfo JSON files, one per node); this node publishes
                          <DIR>/<--node>.json and keeps XFRM rules for every other file (needs --node)
  --kubeconfig FILE       kubeconfig for the KmeshNodeInfo custom resources (default: the pod's service
                          account); this node publishes <namespace>/<--node> and watches all of them
  --node-info-namespace NS
                          namespace of the KmeshNodeInfo objects (default ${DEFAULTS.nodeInfoNamespace})
  --node-info-delete-on-exit
                          delete this node's KmeshNodeInfo on shutdown (default: keep it, so peers keep
                          their rules for us while the daemon restarts)
  --ipsec-allow-plaintext install Kmesh's rules only (Kmesh parity): plaintext from other nodes' pods is
                          delivered instead of dropped
  --ipsec-address IP      this node's address for ESP tunnels, repeatable (required with IPsec)
  --ipsec-pod-cidr CIDR   this node's pod CIDR, repeatable (required with IPsec)
  --ipsec-netns PATH      network namespace of the XFRM rules and tc devices (default: the daemon's own)
  --ipsec-encrypt-dev DEV host-side pod veth: tc_mark_encrypt on its ingress, repeatable
  --ipsec-decrypt-dev DEV node NIC: tc_mark_decrypt on its ingress, repeatable
  -V, --version           print the version and exit
  -h, --help              show this help

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

export function parseCli(
  argv: string[],
  env: Record<string, string | undefined> = process.env,
): DaemonOptions | 'help' | 'version' {
  let values
  try {
    ;({ values } = parseArgs({
      args: argv,
      options: {
        'mesh-file': { type: 'string' },
        'xds-address': { type: 'string' },
        'xds-ca-file': { type: 'string' },
        'xds-token-file': { type: 'string' },
        'xds-insecure': { type: 'boolean' },
        'admin-address': { type: 'string' },
        cgroup: { type: 'string' },
        'pin-root': { type: 'string' },
        'state-dir': { type: 'string' },
        node: { type: 'string' },
        netns: { type: 'string' },
        'map-size': { type: 'string', multiple: true },
        'keep-pinned': { type: 'boolean' },
        'no-watch': { type: 'boolean' },
        'log-format': { type: 'string' },
        'log-level': { type: 'string' },
        'ipsec-key-file': { type: 'string' },
        'node-info-dir': { type: 'string' },
        'node-info-source': { type: 'string' },
        kubeconfig: { type: 'string' },
        'node-info-namespace': { type: 'string' },
        'node-info-delete-on-exit': { type: 'boolean' },
        'ipsec-allow-plaintext': { type: 'boolean' },
        'ipsec-address': { type: 'string', multiple: true },
        'ipsec-pod-cidr': { type: 'string', multiple: true },
        'ipsec-netns': { type: 'string' },
        'ipsec-encrypt-dev': { type: 'string', multiple: true },
        'ipsec-decrypt-dev': { type: 'string', multiple: true },
        'lock-wait': { type: 'string' },
        'force-cgroup': { type: 'boolean' },
        'allow-root-cgroup': { type: 'boolean' },
        'reload-settle': { type: 'string' },
        'reload-max-wait': { type: 'string' },
        'mesh-file-max-bytes': { type: 'string' },
        version: { type: 'boolean', short: 'V' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
    }))
  } catch (err) {
    throw new UsageError(`${(err as Error).message}; see --help`)
  }
  if (values.help) return 'help'
  if (values.version) return 'version'
  if (!values['mesh-file'] === !values['xds-address'])
    throw new UsageError('give exactly one of --mesh-file (local mode) and --xds-address (cluster mode); see --help')
  for (const flag of ['xds-ca-file', 'xds-token-file', 'xds-insecure'] as const) {
    if (values[flag] !== undefined && !values['xds-address'])
      throw new UsageError(`--${flag} needs --xds-address; see --help`)
  }
  if (values['xds-insecure'] && values['xds-ca-file'])
    throw new UsageError('--xds-insecure and --xds-ca-file exclude each other')
  if (!values.cgroup) throw new UsageError('--cgroup is required; see --help')
  const logFormat = values['log-format']
  if (logFormat !== undefined && logFormat !== 'text' && logFormat !== 'json')
    throw new UsageError(`--log-format must be text or json, got ${logFormat}`)
  const logLevel = values['log-level']
  if (logLevel !== undefined && !(LOG_LEVELS as readonly string[]).includes(logLevel))
    throw new UsageError(`--log-level must be one of ${LOG_LEVELS.join(', ')}, got ${logLevel}`)
  const reloadSettleMs = parseDuration('reload-settle', values['reload-settle'])
  const reloadMaxWaitMs = parseDuration('reload-max-wait', values['reload-max-wait'])
  const settle = reloadSettleMs ?? DEFAULTS.reloadSettleMs
  const maxWait = reloadMaxWaitMs ?? DEFAULTS.reloadMaxWaitMs
  if (maxWait < settle)
    throw new UsageError(`--reload-max-wait (${maxWait} ms) must not be shorter than --reload-settle (${settle} ms)`)
  if (values['mesh-file-max-bytes'] !== undefined && !values['mesh-file'])
    throw new UsageError('--mesh-file-max-bytes needs --mesh-file; see --help')
  const maxBytesText = values['mesh-file-max-bytes']
  const meshFileMaxBytes = maxBytesText === undefined ? undefined : Number(maxBytesText)
  if (
    maxBytesText !== undefined &&
    (!/^\d+$/.test(maxBytesText) || meshFileMaxBytes! < 1 || !Number.isSafeInteger(meshFileMaxBytes))
  )
    throw new UsageError(`--mesh-file-max-bytes ${maxBytesText}: expected a positive number of bytes`)
  const nodeName = values.node ?? (env.NODE_NAME || undefined)
  return {
    meshFile: values['mesh-file'],
    xds: values['xds-address']
      ? {
          address: values['xds-address'],
          caFile: values['xds-ca-file'],
          tokenFile: values['xds-token-file'],
          insecure: values['xds-insecure'] ?? false,
        }
      : undefined,
    cgroup: values.cgroup,
    pinRoot: values['pin-root'],
    stateDir: values['state-dir'],
    nodeName,
    nodeNameSource: values.node !== undefined ? '--node' : nodeName !== undefined ? 'NODE_NAME' : undefined,
    netnsPath: values.netns,
    mapSizes: parseMapSizes(values['map-size'] ?? []),
    keepPinned: values['keep-pinned'],
    watch: values['no-watch'] ? false : undefined,
    logFormat,
    logLevel,
    adminAddress: values['admin-address'],
    ipsec: parseIpsec({ ...values, node: nodeName }),
    lockWaitMs: parseDuration('lock-wait', values['lock-wait']),
    forceCgroup: values['force-cgroup'],
    allowRootCgroup: values['allow-root-cgroup'],
    reloadSettleMs,
    reloadMaxWaitMs,
    meshFileMaxBytes,
  }
}

function parseIpsec(v: Record<string, string | string[] | boolean | undefined>): IpsecOptions | undefined {
  const str = (k: string): string | undefined => v[k] as string | undefined
  const list = (k: string): string[] => (v[k] as string[] | undefined) ?? []
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
  if (!str('ipsec-key-file')) {
    const stray = flags.find((f) => v[f] !== undefined)
    if (stray) throw new UsageError(`--${stray} needs --ipsec-key-file; see --help`)
    return undefined
  }
  const nodeInfo = parseNodeInfoSource(v)
  if (!str('node'))
    throw new UsageError(
      `--ipsec-key-file needs --node NAME (or NODE_NAME in the environment): it names this node's ${nodeInfo.source === 'dir' ? 'node-info file' : 'KmeshNodeInfo object'}`,
    )
  if (!list('ipsec-address').length) throw new UsageError('--ipsec-key-file needs at least one --ipsec-address')
  if (!list('ipsec-pod-cidr').length) throw new UsageError('--ipsec-key-file needs at least one --ipsec-pod-cidr')
  return {
    keyFile: str('ipsec-key-file')!,
    nodeInfo,
    rejectPlaintext: !v['ipsec-allow-plaintext'],
    addresses: list('ipsec-address'),
    podCIDRs: list('ipsec-pod-cidr'),
    netns: str('ipsec-netns'),
    encryptDevices: list('ipsec-encrypt-dev'),
    decryptDevices: list('ipsec-decrypt-dev'),
  }
}

/** --node-info-source and the flags of each source; the default follows the mode (see HELP). */
function parseNodeInfoSource(v: Record<string, string | string[] | boolean | undefined>): NodeInfoSourceOption {
  const dir = v['node-info-dir'] as string | undefined
  const given = v['node-info-source'] as string | undefined
  if (given !== undefined && given !== 'dir' && given !== 'kubernetes')
    throw new UsageError(`--node-info-source must be dir or kubernetes, got ${given}`)
  const source = given ?? (dir !== undefined ? 'dir' : v['xds-address'] ? 'kubernetes' : undefined)
  if (source === undefined)
    throw new UsageError(
      '--ipsec-key-file needs --node-info-dir DIR (local mode) or --node-info-source kubernetes; see --help',
    )
  const kubeFlags = ['kubeconfig', 'node-info-namespace', 'node-info-delete-on-exit'] as const
  if (source === 'dir') {
    if (dir === undefined) throw new UsageError('--node-info-source dir needs --node-info-dir DIR')
    const stray = kubeFlags.find((f) => v[f] !== undefined)
    if (stray)
      throw new UsageError(`--${stray} needs --node-info-source kubernetes (node info comes from --node-info-dir here)`)
    return { source, dir }
  }
  if (dir !== undefined) throw new UsageError('--node-info-dir and --node-info-source kubernetes exclude each other')
  const namespace = (v['node-info-namespace'] as string | undefined) ?? DEFAULTS.nodeInfoNamespace
  if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(namespace) || namespace.length > 63)
    throw new UsageError(
      `--node-info-namespace ${namespace}: must be a DNS-1123 label (lowercase letters, digits and -)`,
    )
  return {
    source,
    kubeconfig: v.kubeconfig as string | undefined,
    namespace,
    deleteOnExit: (v['node-info-delete-on-exit'] as boolean | undefined) ?? false,
  }
}

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }

/** `30s`, `500ms`, `2m`, `1h` or `0` to milliseconds (undefined if not given); else a usage error naming the flag. */
export function parseDuration(flag: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(text)
  if (text === '0') return 0
  if (!m) throw new UsageError(`--${flag} ${text}: expected a duration such as 500ms, 30s, 2m or 0`)
  const ms = Number(m[1]) * DURATION_UNITS[m[2]!]!
  if (!Number.isFinite(ms) || ms > 2 ** 31 - 1) throw new UsageError(`--${flag} ${text}: at most 24 days`)
  return Math.round(ms)
}

function parseMapSizes(items: string[]): Record<string, number> {
  const known = new Set(Object.values(mapSpecs).map((s) => s.name))
  const out: Record<string, number> = {}
  for (const item of items) {
    const m = /^([a-z0-9_]+)=(\d+)$/.exec(item)
    if (!m) throw new UsageError(`--map-size ${item}: expected NAME=N, e.g. km_backend=200000`)
    const [, name, n] = m as unknown as [string, string, string]
    if (!known.has(name))
      throw new UsageError(`--map-size ${item}: unknown map ${name}; sizable maps: ${[...known].join(', ')}`)
    const size = Number(n)
    if (size < 1 || size > 0xffffffff) throw new UsageError(`--map-size ${item}: N must be between 1 and 4294967295`)
    out[name] = size
  }
  return out
}
