/**
 * Node mode as the daemon starts it: the pod reconciler (node-agent.ts) and the kmesh-cni socket server, whose
 * decide() is answered from the reconciler's caches and whose outcomes the reconciler records. The daemon attached
 * its connect programs without enrolling anything: only the pods decided here are redirected.
 */
import { startCniServer, type CniPod, type CniServer } from '../cni/index.js'
import type { Logger } from '../log.js'
import { startNodeAgent } from './node-agent.js'
import type { PodReconciler } from './reconciler.js'
import { startCniInstall } from './cni-install.js'

export interface NodeModeSettings {
  nodeName: string
  cgroupPath: string
  kubeconfig?: string | undefined
  acceptAmbient?: boolean | undefined
  procRoot?: string | undefined
  resyncMs?: number | undefined
  /** The kmesh-cni socket; undefined or '' for none. */
  cniSocket?: string | undefined
  /** Install kmesh-cni into the node's CNI bin and configuration dirs (both, with a socket), or not at all. */
  cniBinDir?: string | undefined
  cniConfDir?: string | undefined
  /** A pod's network namespace was enrolled or unenrolled (the daemon attaches or detaches authorization there). */
  onEnrolment?: ((netnsPath: string, enrolled: boolean, pod: string) => void) | undefined
  log: Logger
}

export interface NodeMode {
  readonly reconciler: PodReconciler
  readonly cni?: CniServer | undefined
  /** For the admin dump. */
  status(): Record<string, unknown>
  /** uninstall: also remove kmesh-cni from the node (a plain stop; an upgrade keeps it). */
  close(options?: { uninstall: boolean }): Promise<void>
}

/** What the CNI plugin asks at pod ADD: the rule from the caches, waiting briefly for a pod not listed yet. */
export function cniDecider(reconciler: PodReconciler) {
  return async (pod: CniPod) => {
    if (!pod.podNamespace || !pod.podName)
      return { enrol: false, reason: 'no K8S_POD_NAMESPACE/K8S_POD_NAME in CNI_ARGS: not a Kubernetes pod' }
    // The plugin gives up after 2 s; answer within 1.5 s whatever the caches hold by then.
    return reconciler.decideWhenKnown(pod.podNamespace, pod.podName, 1500)
  }
}

/** The kmesh-cni socket server answering from the reconciler and recording the plugin's outcomes on it. */
export function startCniServerFor(reconciler: PodReconciler, socketPath: string, log: Logger): Promise<CniServer> {
  return startCniServer({
    socketPath,
    decide: cniDecider(reconciler),
    onResult: (pod, enrolled, detail) => {
      if (pod.command !== 'ADD' || !pod.podNamespace || !pod.podName) return
      reconciler.recordCni(pod.podNamespace, pod.podName, {
        op: 'enrol',
        netnsPath: pod.netns,
        ok: enrolled,
        error: detail,
      })
    },
    log: log.child({ component: 'cni' }),
  })
}

export async function startNodeMode(s: NodeModeSettings): Promise<NodeMode> {
  const reconciler = startNodeAgent({
    nodeName: s.nodeName,
    cgroupPath: s.cgroupPath,
    kubeconfigFile: s.kubeconfig,
    rule: { acceptAmbient: s.acceptAmbient },
    procRoot: s.procRoot,
    resyncMs: s.resyncMs,
    log: s.log,
    onEvent: (e) => {
      if ('type' in e && (e.type === 'enrolled' || e.type === 'unenrolled'))
        s.onEnrolment?.(e.netns, e.type === 'enrolled', e.pod)
    },
  })
  let cni: CniServer | undefined
  if (s.cniSocket) {
    try {
      cni = await startCniServerFor(reconciler, s.cniSocket, s.log)
    } catch (err) {
      await reconciler.close()
      throw err
    }
  }
  // The plugin is chained only once the socket answers (a pod created before that is enrolled by the reconciler).
  const install =
    cni && s.cniBinDir && s.cniConfDir
      ? startCniInstall({ binDir: s.cniBinDir, confDir: s.cniConfDir, socketPath: cni.socketPath, log: s.log })
      : undefined
  return {
    reconciler,
    cni,
    status: () => ({
      node: s.nodeName,
      cniSocket: cni?.socketPath ?? null,
      cniInstall: install?.status() ?? null,
      ...reconciler.status(),
    }),
    close: async (options = { uninstall: false }) => {
      install?.close(options)
      await cni?.close()
      await reconciler.close()
    },
  }
}
