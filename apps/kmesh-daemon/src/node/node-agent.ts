/**
 * Node mode's Kubernetes side: the pods of this node (field selector spec.nodeName) and the namespaces, each through
 * one informer, feeding the pod reconciler, whose enrol action is a control connect from a process in the attached
 * cgroup, inside the pod's netns (dataplane/enrol.ts). The CNI plugin's server asks `decide` at pod creation.
 */
import { CoreV1Api, type KubeConfig, type V1Namespace, type V1Pod } from '@kubernetes/client-node'
import { controlConnect } from '../dataplane/enrol.js'
import { loadKubeConfig } from '../kube/config.js'
import { Informer, type InformerEvent } from '../kube/informer.js'
import type { Logger } from '../log.js'
import type { EnrolRuleOptions } from './enrol-rule.js'
import { type FoundNetns, procNetnsFinder } from './netns-finder.js'
import { PodReconciler, type EnrolAction, type EnrolOp, type ReconcilerEvent } from './reconciler.js'

export interface NodeAgentOptions {
  nodeName: string
  /** The cgroup the connect programs are attached to: the control connects run in it. */
  cgroupPath: string
  kubeconfigFile?: string | undefined
  /** Overrides kubeconfigFile / in-cluster loading (tests, embedding). */
  kubeConfig?: KubeConfig | undefined
  rule?: EnrolRuleOptions | undefined
  /** The host's /proc, where pod network namespaces are looked for (default /proc). */
  procRoot?: string | undefined
  resyncMs?: number | undefined
  backoff?: { initialMs?: number | undefined; maxMs?: number | undefined } | undefined
  /** Replaces the control connect (unit tests). */
  act?: EnrolAction | undefined
  /** Replaces the /proc scan (unit tests). */
  findNetns?: ((podIPs: readonly string[]) => FoundNetns | undefined) | undefined
  log: Logger
  onEvent?: ((e: ReconcilerEvent | ({ informer: 'pods' | 'namespaces' } & InformerEvent)) => void) | undefined
}

/** Enrols or unenrols a netns with a control connect from the cgroup; our hook answers ECONNREFUSED. */
export function controlConnectAction(cgroupPath: string): EnrolAction {
  return async (netnsPath: string, op: EnrolOp) => {
    const outcome = await controlConnect({ cgroupPath, netnsPath }, op)
    if (outcome !== 'ECONNREFUSED')
      throw new Error(
        `the control connect returned ${outcome || 'nothing'} instead of ECONNREFUSED: are the connect programs attached to ${cgroupPath}?`,
      )
  }
}

export function startNodeAgent(o: NodeAgentOptions): PodReconciler {
  const kc = o.kubeConfig ?? loadKubeConfig(o.kubeconfigFile)
  const core = kc.makeApiClient(CoreV1Api)
  const log = o.log.child({ component: 'node' })
  const fieldSelector = `spec.nodeName=${o.nodeName}`
  const informerLog =
    (informer: 'pods' | 'namespaces') =>
    (e: InformerEvent): void => {
      o.onEvent?.({ informer, ...e })
      if (e.type === 'list-failed' || (e.type === 'watch-ended' && e.error))
        log.warn(
          { informer, err: e.error, retryInMs: e.retryInMs },
          'node: Kubernetes API unreachable; retrying, the cache in hand stays',
        )
      else if (e.type === 'listed')
        log.info({ informer, items: e.items, resourceVersion: e.resourceVersion }, 'node: listed')
    }
  const pods = new Informer<V1Pod>({
    kubeConfig: kc,
    path: '/api/v1/pods',
    fieldSelector,
    list: () => core.listPodForAllNamespaces({ fieldSelector }),
    backoff: o.backoff,
    onEvent: informerLog('pods'),
  })
  const namespaces = new Informer<V1Namespace>({
    kubeConfig: kc,
    path: '/api/v1/namespaces',
    list: () => core.listNamespace(),
    backoff: o.backoff,
    onEvent: informerLog('namespaces'),
  })
  const reconciler = new PodReconciler({
    pods,
    namespaces,
    act: o.act ?? controlConnectAction(o.cgroupPath),
    findNetns: o.findNetns ?? procNetnsFinder({ procRoot: o.procRoot }),
    rule: o.rule,
    resyncMs: o.resyncMs,
    backoff: o.backoff,
    log,
    onEvent: (e) => o.onEvent?.(e),
  })
  reconciler.start()
  log.info(
    { node: o.nodeName, cgroup: o.cgroupPath, server: kc.getCurrentCluster()?.server },
    'node: watching pods and namespaces',
  )
  return reconciler
}
