/**
 * The kernel features each part of the data path needs, probed before anything is loaded (libbpf's feature
 * probes): on a kernel that lacks one, the daemon refuses to start with the feature, the first mainline kernel
 * that has it, and what needs it — not with a verifier log. The table is docs/kernel-support.md's.
 */
import { release } from 'node:os'
import { type ProbeResult, probeHelper, probeMapType, probeProgType } from '@kmesh-ts/bpf-maps'

/** linux/bpf.h numbers (stable uapi). */
const PROG = { sched_cls: 3, xdp: 6, sock_ops: 13, cgroup_sock_addr: 18 } as const
const MAP = { hash: 1, array: 2, prog_array: 3, percpu_array: 6, lpm_trie: 11, sk_storage: 24, ringbuf: 27 } as const
const FUNC = {
  tail_call: 12,
  csum_diff: 28,
  sock_ops_cb_flags_set: 59,
  xdp_adjust_tail: 65,
  sk_storage_get: 107,
  get_netns_cookie: 122,
  ringbuf_reserve: 131,
  set_retval: 187,
} as const

export type DataPathPart = 'connect' | 'authz' | 'telemetry' | 'ipsec'

export interface KernelFeature {
  /** What is probed, in the kernel's words. */
  feature: string
  /** The first mainline Linux release that has it. */
  since: string
  /** Which part of kmesh-ts needs it, and for what. */
  neededBy: DataPathPart
  why: string
  probe: () => ProbeResult
}

const prog = (name: keyof typeof PROG) => () => probeProgType(PROG[name])
const map = (name: keyof typeof MAP) => () => probeMapType(MAP[name])
const helper = (p: keyof typeof PROG, f: keyof typeof FUNC) => () => probeHelper(PROG[p], FUNC[f])

export const KERNEL_FEATURES: readonly KernelFeature[] = [
  {
    feature: 'BPF_PROG_TYPE_CGROUP_SOCK_ADDR (connect4/6)',
    since: '4.17',
    neededBy: 'connect',
    why: 'the connect hooks',
    probe: prog('cgroup_sock_addr'),
  },
  {
    feature: 'BPF_MAP_TYPE_HASH, ARRAY, PROG_ARRAY',
    since: '4.2',
    neededBy: 'connect',
    why: 'the load-balancing maps and the waypoint tail call',
    probe: () => all(map('hash'), map('array'), map('prog_array')),
  },
  {
    feature: 'BPF_MAP_TYPE_SK_STORAGE',
    since: '5.2',
    neededBy: 'connect',
    why: "a rewritten socket's original destination",
    probe: map('sk_storage'),
  },
  {
    feature: 'bpf_sk_storage_get from cgroup/connect',
    since: '5.3',
    neededBy: 'connect',
    why: "a rewritten socket's original destination",
    probe: helper('cgroup_sock_addr', 'sk_storage_get'),
  },
  {
    feature: 'bpf_get_netns_cookie from cgroup/connect',
    since: '5.7',
    neededBy: 'connect',
    why: 'enrolment by network namespace (km_manage)',
    probe: helper('cgroup_sock_addr', 'get_netns_cookie'),
  },
  {
    feature: 'bpf_set_retval from cgroup/connect',
    since: '5.18',
    neededBy: 'connect',
    why: 'a refused VIP fails with ECONNREFUSED (and the enrolment control connect is answered)',
    probe: helper('cgroup_sock_addr', 'set_retval'),
  },
  {
    feature: 'BPF_PROG_TYPE_XDP',
    since: '4.8',
    neededBy: 'authz',
    why: 'authorization on the workload interface',
    probe: prog('xdp'),
  },
  {
    feature: 'BPF_MAP_TYPE_LPM_TRIE, PERCPU_ARRAY',
    since: '4.11',
    neededBy: 'authz',
    why: 'source prefixes and per-policy counters',
    probe: () => all(map('lpm_trie'), map('percpu_array')),
  },
  {
    feature: 'bpf_xdp_adjust_tail and bpf_csum_diff from XDP',
    since: '4.18',
    neededBy: 'authz',
    why: 'answering a denied SYN with a RST',
    probe: () => all(helper('xdp', 'xdp_adjust_tail'), helper('xdp', 'csum_diff')),
  },
  {
    feature: 'BPF_PROG_TYPE_SOCK_OPS and bpf_sock_ops_cb_flags_set',
    since: '4.17',
    neededBy: 'telemetry',
    why: 'connection open/close events',
    probe: () => all(prog('sock_ops'), helper('sock_ops', 'sock_ops_cb_flags_set')),
  },
  {
    feature: 'BPF_MAP_TYPE_RINGBUF',
    since: '5.8',
    neededBy: 'telemetry',
    why: 'connection records to the daemon',
    probe: () => all(map('ringbuf'), helper('sock_ops', 'ringbuf_reserve')),
  },
  {
    feature: 'BPF_PROG_TYPE_SCHED_CLS',
    since: '4.1',
    neededBy: 'ipsec',
    why: 'the IPsec marks on pod veths and the node NIC',
    probe: prog('sched_cls'),
  },
]

function all(...probes: Array<() => ProbeResult>): ProbeResult {
  for (const p of probes) {
    const r = p()
    if (!r.supported) return r
  }
  return { supported: true }
}

/** The features of these parts that this kernel lacks (a probe that could not run counts as lacking, with its reason). */
export function missingKernelFeatures(
  parts: ReadonlySet<DataPathPart>,
  features: readonly KernelFeature[] = KERNEL_FEATURES,
): Array<KernelFeature & { error?: string }> {
  const missing: Array<KernelFeature & { error?: string }> = []
  for (const f of features) {
    if (!parts.has(f.neededBy)) continue
    const r = f.probe()
    if (!r.supported) missing.push(r.error ? { ...f, error: r.error } : f)
  }
  return missing
}

/** Throws one error naming every missing feature, its kernel and what needs it. */
export function requireKernelFeatures(parts: ReadonlySet<DataPathPart>, features?: readonly KernelFeature[]): void {
  const missing = missingKernelFeatures(parts, features)
  if (missing.length === 0) return
  const lines = missing.map(
    (m) => `  - ${m.feature} (Linux ${m.since}+), for ${m.why}${m.error ? ` (the probe failed: ${m.error})` : ''}`,
  )
  throw new Error(
    `this kernel (${release()}) lacks what kmesh-daemon needs:\n${lines.join('\n')}\n` +
      'See docs/kernel-support.md for the minimum kernel of each part of the data path.',
  )
}
