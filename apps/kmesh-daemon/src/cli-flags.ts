/**
 * Every flag of `kmesh-daemon`, declared once: its value, its environment variable and its help text. The parser
 * (cli.ts), `--help` and the README's table (checked by test/cli-env.test.ts) all come from this table, so a flag
 * cannot exist without its variable or be documented differently in two places.
 *
 * Variable names: Kmesh's and Istio/ztunnel's where they name the same setting (a DaemonSet written for them
 * configures us too: XDS_ADDRESS, NODE_NAME, NETWORK, LOCAL_XDS_PATH, XDS_ROOT_CA), `KMESH_<FLAG>` for ours.
 */
import { mapSpecs } from '@kmesh-ts/bpf-maps/codecs'
import { DEFAULT_MAX_RECEIVE_BYTES } from '@kmesh-ts/xds-client/defaults'
import { DEFAULT_CNI_SOCKET } from './cni/install.js'
import { DEFAULTS, LOG_LEVELS } from './options.js'

export interface FlagSpec {
  /** The long name without `--`. */
  name: string
  type: 'string' | 'boolean'
  /** Repeatable; in the environment a comma-separated list. */
  multiple?: boolean
  short?: string
  /** What the value looks like in the help (`FILE`, `HOST:PORT`); booleans take none. */
  value?: string
  /** The environment variable, or null for flags that are not settings (--help, --version). */
  env: string | null
  /**
   * The flag only means something in one mode: its variable is ignored in the other (one DaemonSet environment
   * serves both), while the flag itself is refused there as before.
   */
  mode?: 'local' | 'cluster'
  /** An empty value is a value (`--admin-address ''` disables the endpoint); else an empty variable is unset. */
  emptyIsValue?: boolean
  /** Help lines (the first one is printed beside the flag). */
  help: string[]
}

const SIZABLE_MAPS = Object.values(mapSpecs).map((s) => `${s.name} (default ${s.defaultMaxEntries})`)

export const FLAGS: readonly FlagSpec[] = [
  {
    name: 'mesh-file',
    type: 'string',
    value: 'FILE',
    env: 'LOCAL_XDS_PATH',
    help: ["the mesh file (local mode; ztunnel's variable for its local config)"],
  },
  {
    name: 'xds-address',
    type: 'string',
    value: 'HOST:PORT',
    env: 'XDS_ADDRESS',
    help: ["istiod's address (cluster mode), e.g. istiod.istio-system.svc:15012"],
  },
  {
    name: 'xds-ca-file',
    type: 'string',
    value: 'FILE',
    env: 'XDS_ROOT_CA',
    mode: 'cluster',
    help: ["CA that signed istiod's certificate (default /var/run/secrets/istio/root-cert.pem)"],
  },
  {
    name: 'xds-token-file',
    type: 'string',
    value: 'FILE',
    env: 'KMESH_XDS_TOKEN_FILE',
    mode: 'cluster',
    help: ['bearer token sent to istiod, re-read on every reconnect', '(e.g. /var/run/secrets/tokens/istio-token)'],
  },
  {
    name: 'xds-insecure',
    type: 'boolean',
    env: 'KMESH_XDS_INSECURE',
    mode: 'cluster',
    help: [
      'plaintext gRPC (only for a local test server)',
      'The node identity comes from POD_NAME, POD_NAMESPACE, INSTANCE_IP and NODE_NAME',
      "when set (a DaemonSet's downward API), else from --node and the host name; CLUSTER_ID,",
      'SERVICE_ACCOUNT and ISTIO_META_* are passed to istiod as ztunnel does.',
    ],
  },
  {
    name: 'xds-max-message-bytes',
    type: 'string',
    value: 'N',
    env: 'KMESH_XDS_MAX_MESSAGE_BYTES',
    mode: 'cluster',
    help: [
      `largest response accepted from istiod (default ${DEFAULT_MAX_RECEIVE_BYTES}, 200 MiB). A larger one ends the`,
      'stream (RESOURCE_EXHAUSTED, logged): raise it for a first push of about a million workloads',
    ],
  },
  {
    name: 'cgroup',
    type: 'string',
    value: 'DIR',
    env: 'KMESH_CGROUP',
    help: [
      'cgroup v2 directory whose processes are managed (required). Refused: the cgroup v2',
      'root (unless --allow-root-cgroup), cgroup v1 and non-cgroup directories, and a cgroup',
      "where another kmesh-ts daemon's connect programs are attached (unless --force-cgroup)",
    ],
  },
  {
    name: 'allow-root-cgroup',
    type: 'boolean',
    env: 'KMESH_ALLOW_ROOT_CGROUP',
    help: ['accept the cgroup v2 root (a node agent attaches there on purpose)'],
  },
  {
    name: 'node-mode',
    type: 'boolean',
    env: 'KMESH_NODE_MODE',
    help: [
      "node mode: attach at --cgroup (the node's cgroup v2 root, with --allow-root-cgroup)",
      'without enrolling the host, and enrol the pods of --node whose namespace or pod label',
      'istio.io/dataplane-mode is Kmesh (any case; none opts out); needs --node',
    ],
  },
  {
    name: 'node-accept-ambient',
    type: 'boolean',
    env: 'KMESH_NODE_ACCEPT_AMBIENT',
    help: ["node mode: take Istio ambient's istio.io/dataplane-mode=ambient as ours too"],
  },
  {
    name: 'node-resync',
    type: 'string',
    value: 'DURATION',
    env: 'KMESH_NODE_RESYNC',
    help: ['node mode: look at every pod again this often (default 60s; 0: never)'],
  },
  {
    name: 'proc-root',
    type: 'string',
    value: 'DIR',
    env: 'KMESH_PROC_ROOT',
    help: ["node mode: the host's /proc, where pod network namespaces are found by pod IP (default /proc)"],
  },
  {
    name: 'cni-socket',
    type: 'string',
    value: 'PATH',
    env: 'KMESH_CNI_SOCKET',
    emptyIsValue: true,
    help: [
      `node mode: the socket the kmesh-cni plugin asks at pod creation (default ${DEFAULT_CNI_SOCKET};`,
      "'' for none)",
    ],
  },
  {
    name: 'cni-bin-dir',
    type: 'string',
    value: 'DIR',
    env: 'KMESH_CNI_BIN_DIR',
    help: ["node mode: install kmesh-cni into the node's CNI binary dir (e.g. /opt/cni/bin); needs --cni-conf-dir"],
  },
  {
    name: 'cni-conf-dir',
    type: 'string',
    value: 'DIR',
    env: 'KMESH_CNI_CONF_DIR',
    help: [
      "node mode: chain kmesh-cni at the end of the node's primary network configuration there (e.g.",
      '/etc/cni/net.d); removed again on a plain stop, kept with --keep-pinned (an upgrade)',
    ],
  },
  {
    name: 'force-cgroup',
    type: 'boolean',
    env: 'KMESH_FORCE_CGROUP',
    help: [
      "attach even where another kmesh-ts daemon's connect programs are attached (both",
      'then run; the first attached rewrites first)',
    ],
  },
  {
    name: 'pin-root',
    type: 'string',
    value: 'DIR',
    env: 'KMESH_PIN_ROOT',
    help: [
      `bpffs directory for pinned maps and links (default ${DEFAULTS.pinRoot});`,
      'bpffs is mounted at /sys/fs/bpf if it is not. One daemon at a time owns a pin root',
      'and a state dir: it holds a lock on both for its whole life',
    ],
  },
  {
    name: 'state-dir',
    type: 'string',
    value: 'DIR',
    env: 'KMESH_STATE_DIR',
    help: [`where stable ids are persisted (default ${DEFAULTS.stateDir})`],
  },
  {
    name: 'lock-wait',
    type: 'string',
    value: 'DURATION',
    env: 'KMESH_LOCK_WAIT',
    help: [
      'wait this long for a daemon that holds the pin root or state dir (e.g. 30s, 500ms;',
      "default 0: exit at once with rc 1, naming the holder's pid)",
    ],
  },
  {
    name: 'netns',
    type: 'string',
    value: 'PATH',
    env: 'KMESH_NETNS',
    help: ["network namespace to enrol, e.g. /run/netns/NAME (default: the daemon's own)"],
  },
  {
    name: 'node',
    type: 'string',
    value: 'NAME',
    env: 'NODE_NAME',
    help: ["this node's name: its first workload's locality ranks endpoints for", 'Strict and Failover services'],
  },
  {
    name: 'network',
    type: 'string',
    value: 'NAME',
    env: 'NETWORK',
    help: [
      "this node's network (default: none): only service VIPs and workload addresses on it, or",
      'on no network, are served; endpoints on other networks are not used (see the README)',
    ],
  },
  {
    name: 'map-size',
    type: 'string',
    multiple: true,
    value: 'NAME=N',
    env: 'KMESH_MAP_SIZE',
    help: [
      `starting capacity of a map, repeatable (a floor: a map grows online when the mesh outgrows it);`,
      `maps: ${SIZABLE_MAPS.join(', ')}`,
    ],
  },
  {
    name: 'map-size-max',
    type: 'string',
    multiple: true,
    value: 'NAME=N',
    env: 'KMESH_MAP_SIZE_MAX',
    help: ['the most entries a map may grow to, repeatable (default 8388608); past it a change is refused'],
  },
  {
    name: 'authz-xdp-mode',
    type: 'string',
    value: 'MODE',
    env: 'KMESH_AUTHZ_XDP_MODE',
    help: [
      'how authorization is attached: generic (default: a denied client gets a RST whatever the peer)',
      'or native (the driver hook; on a veth the RST is delivered only if the host side has NAPI)',
    ],
  },
  {
    name: 'keep-pinned',
    type: 'boolean',
    env: 'KMESH_KEEP_PINNED',
    help: [
      'on SIGTERM/SIGINT leave programs attached and maps pinned, so traffic keeps',
      'flowing; the next start takes over. Without it the daemon detaches and unpins.',
    ],
  },
  {
    name: 'no-watch',
    type: 'boolean',
    env: 'KMESH_NO_WATCH',
    help: ['apply the file once and do not watch it (SIGHUP still re-reads it)'],
  },
  {
    name: 'reload-settle',
    type: 'string',
    value: 'DURATION',
    env: 'KMESH_RELOAD_SETTLE',
    help: ['apply a changed mesh file once it stayed the same this long (default 1s)'],
  },
  {
    name: 'reload-max-wait',
    type: 'string',
    value: 'DURATION',
    env: 'KMESH_RELOAD_MAX_WAIT',
    help: ['under continuous edits apply at the latest this long after the first one (default 5s)'],
  },
  {
    name: 'mesh-file-max-bytes',
    type: 'string',
    value: 'N',
    env: 'KMESH_MESH_FILE_MAX_BYTES',
    mode: 'local',
    help: [`refuse larger mesh files before parsing them (default ${DEFAULTS.meshFileMaxBytes})`],
  },
  {
    name: 'log-format',
    type: 'string',
    value: 'text|json',
    env: 'KMESH_LOG_FORMAT',
    help: [`log line format on stderr (default ${DEFAULTS.logFormat})`],
  },
  {
    name: 'log-level',
    type: 'string',
    value: 'LEVEL',
    env: 'KMESH_LOG_LEVEL',
    help: [`${LOG_LEVELS.join(', ')} (default ${DEFAULTS.logLevel})`],
  },
  {
    name: 'admin-address',
    type: 'string',
    value: 'H:P',
    env: 'KMESH_ADMIN_ADDRESS',
    emptyIsValue: true,
    help: [
      `admin endpoint: readiness, config dump, decoded maps, log levels, profiles, /ui (default ${DEFAULTS.adminAddress};`,
      "'' disables it, also as an empty KMESH_ADMIN_ADDRESS)",
    ],
  },
  {
    name: 'metrics-address',
    type: 'string',
    value: 'H:P',
    env: 'KMESH_METRICS_ADDRESS',
    emptyIsValue: true,
    help: [
      `Prometheus metrics: /metrics, /stats/prometheus, /status/metric (default ${DEFAULTS.metricsAddress};`,
      "'' disables it)",
    ],
  },
  {
    name: 'access-log',
    type: 'string',
    value: 'off|text|json',
    env: 'KMESH_ACCESS_LOG',
    help: [
      `one line per closed connection on stdout, Kmesh's fields (default ${DEFAULTS.accessLog});`,
      'switch at runtime with POST /accesslog or `kmesh-daemon accesslog`',
    ],
  },
  {
    name: 'ipsec-key-file',
    type: 'string',
    value: 'FILE',
    env: 'KMESH_IPSEC_KEY_FILE',
    help: ["enable IPsec between nodes with Kmesh's key file (watched; a new SPI rotates)"],
  },
  {
    name: 'node-info-source',
    type: 'string',
    value: 'dir|kubernetes',
    env: 'KMESH_NODE_INFO_SOURCE',
    help: ['where IPsec node info comes from (default: dir with --node-info-dir, else', 'kubernetes in cluster mode)'],
  },
  {
    name: 'node-info-dir',
    type: 'string',
    value: 'DIR',
    env: 'KMESH_NODE_INFO_DIR',
    help: [
      'IPsec node info (KmeshNodeInfo JSON files, one per node); this node publishes',
      '<DIR>/<--node>.json and keeps XFRM rules for every other file (needs --node)',
    ],
  },
  {
    name: 'kubeconfig',
    type: 'string',
    value: 'FILE',
    env: 'KMESH_KUBECONFIG',
    help: [
      "kubeconfig for the Kubernetes API (default: the pod's service account): node mode's",
      'pods and namespaces, and the KmeshNodeInfo custom resources (this node publishes',
      '<namespace>/<--node> and watches all of them)',
    ],
  },
  {
    name: 'node-info-namespace',
    type: 'string',
    value: 'NS',
    env: 'KMESH_NODE_INFO_NAMESPACE',
    help: [`namespace of the KmeshNodeInfo objects (default ${DEFAULTS.nodeInfoNamespace})`],
  },
  {
    name: 'node-info-delete-on-exit',
    type: 'boolean',
    env: 'KMESH_NODE_INFO_DELETE_ON_EXIT',
    help: [
      "delete this node's KmeshNodeInfo on shutdown (default: keep it, so peers keep",
      'their rules for us while the daemon restarts)',
    ],
  },
  {
    name: 'ipsec-allow-plaintext',
    type: 'boolean',
    env: 'KMESH_IPSEC_ALLOW_PLAINTEXT',
    help: [
      "install Kmesh's rules only (Kmesh parity): plaintext from other nodes' pods is",
      'delivered instead of dropped',
    ],
  },
  {
    name: 'ipsec-address',
    type: 'string',
    multiple: true,
    value: 'IP',
    env: 'KMESH_IPSEC_ADDRESS',
    help: ["this node's address for ESP tunnels, repeatable (required with IPsec)"],
  },
  {
    name: 'ipsec-pod-cidr',
    type: 'string',
    multiple: true,
    value: 'CIDR',
    env: 'KMESH_IPSEC_POD_CIDR',
    help: ["this node's pod CIDR, repeatable (required with IPsec)"],
  },
  {
    name: 'ipsec-netns',
    type: 'string',
    value: 'PATH',
    env: 'KMESH_IPSEC_NETNS',
    help: ["network namespace of the XFRM rules and tc devices (default: the daemon's own)"],
  },
  {
    name: 'ipsec-encrypt-dev',
    type: 'string',
    multiple: true,
    value: 'DEV',
    env: 'KMESH_IPSEC_ENCRYPT_DEV',
    help: [
      'host-side pod veth: tc_mark_encrypt on its ingress, repeatable (node mode: each enrolled',
      "pod's veth gets it anyway, found from the pod's network namespace)",
    ],
  },
  {
    name: 'ipsec-decrypt-dev',
    type: 'string',
    multiple: true,
    value: 'DEV',
    env: 'KMESH_IPSEC_DECRYPT_DEV',
    help: [
      'node NIC: tc_mark_decrypt on its ingress, repeatable (default: discovered, the devices',
      'carrying the --ipsec-address addresses and those of default routes)',
    ],
  },
  { name: 'version', type: 'boolean', short: 'V', env: null, help: ['print the version and exit'] },
  { name: 'help', type: 'boolean', short: 'h', env: null, help: ['show this help'] },
]

/** `--name VALUE` (or `-V, --version`) as the help and the README write it. */
export function flagUsage(f: FlagSpec): string {
  return `${f.short ? `-${f.short}, ` : ''}--${f.name}${f.value ? ` ${f.value}` : ''}`
}

/** The Options section of --help: each flag, its help and its environment variable. */
export function optionsHelp(flags: readonly FlagSpec[] = FLAGS): string {
  const indent = ' '.repeat(26)
  const lines: string[] = []
  for (const f of flags) {
    const usage = flagUsage(f)
    const [first, ...rest] = f.help.flatMap((l) => wrap(l, 120 - indent.length))
    if (usage.length < 24) lines.push(`  ${usage.padEnd(24)}${first}`)
    else lines.push(`  ${usage}`, `${indent}${first}`)
    for (const l of rest) lines.push(`${indent}${l}`)
    if (f.env) lines.push(`${indent}env ${f.env}${f.multiple ? ' (comma-separated)' : ''}`)
  }
  return lines.join('\n')
}

/** A help line cut at spaces into lines of at most `width` characters (a longer word stays whole). */
function wrap(line: string, width: number): string[] {
  const out: string[] = []
  let cur = ''
  for (const word of line.split(' ')) {
    if (cur && cur.length + 1 + word.length > width) {
      out.push(cur)
      cur = word
    } else cur = cur ? `${cur} ${word}` : word
  }
  out.push(cur)
  return out
}

/**
 * Environment values of the flags not skipped (those argv gave: a flag wins over its variable), parsed to what
 * parseArgs would have produced. Unset and empty variables count as not given (unless `emptyIsValue`); a boolean
 * variable that is false is not given either (every boolean flag defaults to false).
 * Throws (via `fail`) naming the variable when a value cannot be read.
 */
export function valuesFromEnv(
  skip: (flag: string) => boolean,
  env: Record<string, string | undefined>,
  fail: (message: string) => never,
  flags: readonly FlagSpec[] = FLAGS,
): Map<string, { value: string | boolean | string[]; env: string }> {
  const out = new Map<string, { value: string | boolean | string[]; env: string }>()
  for (const f of flags) {
    if (!f.env || skip(f.name)) continue
    const text = env[f.env]
    if (text === undefined || (text === '' && !f.emptyIsValue)) continue
    if (f.type === 'boolean') {
      const b = parseBool(text)
      if (b === undefined) fail(`${f.env}=${text}: expected true or false (or 1 or 0)`)
      if (b) out.set(f.name, { value: true, env: f.env })
    } else if (f.multiple) {
      const list = text
        .split(',')
        .map((s) => s.trim())
        .filter((s) => s !== '')
      if (list.length > 0) out.set(f.name, { value: list, env: f.env })
    } else out.set(f.name, { value: text, env: f.env })
  }
  return out
}

function parseBool(text: string): boolean | undefined {
  const t = text.trim().toLowerCase()
  if (t === 'true' || t === '1') return true
  if (t === 'false' || t === '0') return false
  return undefined
}

/**
 * The README's flag table (apps/kmesh-daemon/README.md, between the `flags:begin` and `flags:end` markers):
 * test/cli-env.test.ts parses the README's rows and compares them with FLAGS, and prints this table when they
 * differ, to paste in.
 */
export function flagsTableMarkdown(flags: readonly FlagSpec[] = FLAGS): string {
  const rows = flags
    .filter((f) => f.env)
    .map((f) => {
      const usage = flagUsage(f).replaceAll('|', '\\|')
      const list = f.multiple ? ' (comma-separated)' : ''
      const scope = f.mode ? ` (${f.mode} mode only)` : ''
      return `| \`${usage}\` | \`${f.env}\`${list}${scope} | ${f.help.join(' ').replaceAll('|', '\\|')} |`
    })
  return ['| flag | environment variable | meaning |', '| --- | --- | --- |', ...rows].join('\n')
}
