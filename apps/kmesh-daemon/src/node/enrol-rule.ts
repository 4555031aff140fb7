/**
 * Which pods the node agent enrols: Kmesh's ShouldEnroll (pkg/utils/enroll.go, docs/reference/kmesh-dataplane.md
 * §4.1) in our words, as a pure function of the pod's and its namespace's metadata.
 *
 * Our rule, checked in this order:
 *  1. Never: a hostNetwork pod (its netns is the host's: enrolling it would manage every host process), a pod with an
 *     Istio sidecar (annotation `sidecar.istio.io/status` present: the sidecar already captures its traffic), an
 *     Istio-managed waypoint or gateway (label `gateway.istio.io/managed=istio.io-mesh-controller`).
 *  2. Pod label `istio.io/dataplane-mode`: `kmesh` enrols; `none` opts out whatever the namespace says; any other
 *     value (or none at all) leaves the decision to the namespace (as Kmesh: a pod label `ambient` in a Kmesh
 *     namespace is enrolled).
 *  3. Namespace label `istio.io/dataplane-mode=kmesh` enrols; anything else does not.
 *
 * Case: label values are compared without case (`Kmesh`, `kmesh`, `KMESH`), as Kmesh compares `kmesh` (EqualFold);
 * Kmesh compares `none` exactly, we compare it without case too: a label that reads "none" is never taken as consent.
 *
 * `ambient` (Istio ambient's value, served by istio-cni + ztunnel) is not ours by default: on a node where ztunnel
 * also runs, both would capture the same pods. With `acceptAmbient` (for a node where kmesh-ts is the only ambient
 * data plane, migrating from Istio ambient), `ambient` counts as `kmesh` on the pod and on the namespace.
 */

export const DATAPLANE_MODE_LABEL = 'istio.io/dataplane-mode'
export const SIDECAR_STATUS_ANNOTATION = 'sidecar.istio.io/status'
export const GATEWAY_MANAGED_LABEL = 'gateway.istio.io/managed'
export const ISTIO_MESH_CONTROLLER = 'istio.io-mesh-controller'

/** The parts of a Kubernetes object the rule reads (V1Pod and V1Namespace fit). */
export interface PodFacts {
  metadata?: { labels?: Record<string, string> | undefined; annotations?: Record<string, string> | undefined }
  spec?: { hostNetwork?: boolean | undefined } | undefined
}
export interface NamespaceFacts {
  metadata?: { labels?: Record<string, string> | undefined }
}

export interface EnrolRuleOptions {
  /** Take Istio ambient's `ambient` as ours too (default false). */
  acceptAmbient?: boolean | undefined
}

export interface EnrolDecision {
  enrol: boolean
  /** Why, in a few words, for logs and the admin dump. */
  reason: string
}

const same = (a: string | undefined, b: string): boolean => a !== undefined && a.toLowerCase() === b

/** Whether the pod is to be enrolled; `namespace` undefined when it is not known (then only the pod decides). */
export function shouldEnrol(
  pod: PodFacts,
  namespace: NamespaceFacts | undefined,
  options: EnrolRuleOptions = {},
): EnrolDecision {
  const labels = pod.metadata?.labels ?? {}
  if (pod.spec?.hostNetwork) return { enrol: false, reason: 'hostNetwork pod (its netns is the host one)' }
  if (pod.metadata?.annotations?.[SIDECAR_STATUS_ANNOTATION] !== undefined)
    return { enrol: false, reason: `Istio sidecar (annotation ${SIDECAR_STATUS_ANNOTATION})` }
  if (same(labels[GATEWAY_MANAGED_LABEL], ISTIO_MESH_CONTROLLER))
    return { enrol: false, reason: `Istio waypoint/gateway (${GATEWAY_MANAGED_LABEL}=${ISTIO_MESH_CONTROLLER})` }

  const ours = (value: string | undefined): boolean =>
    same(value, 'kmesh') || (options.acceptAmbient === true && same(value, 'ambient'))
  const podMode = labels[DATAPLANE_MODE_LABEL]
  if (ours(podMode)) return { enrol: true, reason: `pod label ${DATAPLANE_MODE_LABEL}=${podMode}` }
  if (same(podMode, 'none')) return { enrol: false, reason: `pod label ${DATAPLANE_MODE_LABEL}=${podMode}` }

  const nsMode = namespace?.metadata?.labels?.[DATAPLANE_MODE_LABEL]
  if (ours(nsMode)) return { enrol: true, reason: `namespace label ${DATAPLANE_MODE_LABEL}=${nsMode}` }
  if (nsMode !== undefined) return { enrol: false, reason: `namespace label ${DATAPLANE_MODE_LABEL}=${nsMode}` }
  return {
    enrol: false,
    reason: namespace ? `no ${DATAPLANE_MODE_LABEL} label` : `no ${DATAPLANE_MODE_LABEL} label (namespace unknown)`,
  }
}
