/**
 * Locality rank of an endpoint as seen from a client, following ztunnel's `load_balance`
 * (docs/reference/istio-workload-api.md §3.6, docs/reference/local-config.md §5.1).
 */

export type Scope = 'Region' | 'Zone' | 'Subzone' | 'Node' | 'Cluster' | 'Network'

export interface Locality {
  region: string
  zone: string
  subzone: string
}

/**
 * Where a workload runs. Absent fields compare as the empty string, because ztunnel defaults a
 * workload's locality, node, cluster id and network to "" (so two workloads that both lack a
 * locality match on Region/Zone/Subzone, exactly as in ztunnel).
 */
export interface PeerInfo {
  locality?: Locality
  node?: string
  clusterId?: string
  network?: string
}

function scopeValue(peer: PeerInfo, scope: Scope): string {
  switch (scope) {
    case 'Region':
      return peer.locality?.region ?? ''
    case 'Zone':
      return peer.locality?.zone ?? ''
    case 'Subzone':
      return peer.locality?.subzone ?? ''
    case 'Node':
      return peer.node ?? ''
    case 'Cluster':
      return peer.clusterId ?? ''
    case 'Network':
      return peer.network ?? ''
  }
}

/** True when `prefs` triggers ztunnel's NETWORK-first rule: Network is the first preference. */
export function isNetworkFirst(prefs: readonly Scope[]): boolean {
  return prefs[0] === 'Network'
}

/**
 * The rank of an endpoint that matches every listed scope: `len(prefs)`, or `2·len − 1` when
 * Network comes first (the network match is worth `1 + (len − 1)`, see {@link localityRank}).
 */
export function maxRank(prefs: readonly Scope[]): number {
  return isNetworkFirst(prefs) ? 2 * prefs.length - 1 : prefs.length
}

/**
 * ztunnel's rank (docs/reference/istio-workload-api.md §3.6): walk `prefs` in order, +1 for each
 * consecutive scope the endpoint shares with the client, stop at the first mismatch.
 *
 * NETWORK-first special case: when `prefs[0]` is `Network`, a network mismatch does not stop the
 * walk (the remaining scopes still rank other-network endpoints), and a network match is worth
 * `1 + (len − 1)`. Same-network endpoints therefore rank in `len .. 2·len − 1` and other-network
 * ones in `0 .. len − 1`: same network always outranks other network. Only the first position
 * is special; `Network` later in the list is an ordinary scope.
 *
 * A missing client (`undefined`: the daemon does not know who is connecting) matches no scope,
 * so every endpoint ranks 0.
 */
export function localityRank(client: PeerInfo | undefined, endpoint: PeerInfo, prefs: readonly Scope[]): number {
  if (client === undefined) return 0
  let rank = 0
  for (let i = 0; i < prefs.length; i++) {
    const scope = prefs[i] as Scope
    const matches = scopeValue(client, scope) === scopeValue(endpoint, scope)
    if (i === 0 && scope === 'Network') {
      if (matches) rank += 1 + (prefs.length - 1)
      continue
    }
    if (!matches) break
    rank += 1
  }
  return rank
}
