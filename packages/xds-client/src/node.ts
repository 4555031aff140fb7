// Node identity for istiod (docs/reference/istio-workload-api.md §2.3). istiod refuses a stream whose first request
// has no node id, parses the id as `type~ip~podname.namespace~namespace.svc.domain`, and reads Istio's node
// metadata (the keys below are the JSON names of istio's NodeMetadata). ztunnel and Kmesh both announce the
// `ztunnel` role, which is what makes istiod serve the workload API to them.
import type { JsonValue, XdsNode } from './wire.js'

export interface NodeIdentity {
  /** this agent's pod IP (INSTANCE_IPS, and the second part of the id) */
  podIp: string
  podName: string
  podNamespace: string
  /** the Kubernetes node this agent runs on */
  nodeName: string
  /** istiod's cluster id; Istio's default is `Kubernetes` */
  clusterId?: string
  network?: string
  serviceAccount?: string
  /** cluster DNS domain, default `cluster.local` */
  dnsDomain?: string
  /** proxy type in the id, default `ztunnel` */
  role?: string
  /** extra metadata, merged last (e.g. ISTIO_VERSION) */
  metadata?: Record<string, JsonValue>
}

export function istioNode(n: NodeIdentity): XdsNode {
  const domain = n.dnsDomain ?? 'cluster.local'
  const role = n.role ?? 'ztunnel'
  const metadata: Record<string, JsonValue> = {
    NAME: n.podName,
    NAMESPACE: n.podNamespace,
    INSTANCE_IPS: n.podIp,
    NODE_NAME: n.nodeName,
    CLUSTER_ID: n.clusterId ?? 'Kubernetes',
  }
  if (n.network) metadata['NETWORK'] = n.network
  if (n.serviceAccount) metadata['SERVICE_ACCOUNT'] = n.serviceAccount
  Object.assign(metadata, n.metadata ?? {})
  return {
    id: `${role}~${n.podIp}~${n.podName}.${n.podNamespace}~${n.podNamespace}.svc.${domain}`,
    metadata,
    userAgentName: 'kmesh-ts',
  }
}

/**
 * Node identity from the environment a DaemonSet pod usually gets through the downward API (POD_NAME,
 * POD_NAMESPACE, INSTANCE_IP, NODE_NAME, CLUSTER_ID, NETWORK, SERVICE_ACCOUNT). Like ztunnel, every
 * `ISTIO_META_<KEY>` becomes metadata KEY (a string) and every `ISTIO_METAJSON_<KEY>` KEY (parsed JSON).
 * Throws naming the first missing variable.
 */
export function istioNodeFromEnv(env: NodeJS.ProcessEnv = process.env): XdsNode {
  const need = (k: string): string => {
    const v = env[k]
    if (!v) throw new Error(`node identity: environment variable ${k} is not set`)
    return v
  }
  const metadata: Record<string, JsonValue> = {}
  for (const [k, v] of Object.entries(env)) {
    if (v === undefined) continue
    if (k.startsWith('ISTIO_METAJSON_')) {
      try {
        metadata[k.slice('ISTIO_METAJSON_'.length)] = JSON.parse(v) as JsonValue
      } catch (e) {
        throw new Error(`node identity: ${k} is not valid JSON: ${(e as Error).message}`)
      }
    } else if (k.startsWith('ISTIO_META_')) metadata[k.slice('ISTIO_META_'.length)] = v
  }
  const id: NodeIdentity = {
    podIp: need('INSTANCE_IP'),
    podName: need('POD_NAME'),
    podNamespace: need('POD_NAMESPACE'),
    nodeName: need('NODE_NAME'),
    metadata,
  }
  if (env['CLUSTER_ID']) id.clusterId = env['CLUSTER_ID']
  if (env['NETWORK']) id.network = env['NETWORK']
  if (env['SERVICE_ACCOUNT']) id.serviceAccount = env['SERVICE_ACCOUNT']
  return istioNode(id)
}
