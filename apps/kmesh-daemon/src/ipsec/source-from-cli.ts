/** The NodeInfoSource that the daemon's flags ask for (--node-info-dir, or --node-info-source kubernetes). */
import type { NodeInfoSourceOption } from '../options.js'
import type { Logger } from '../log.js'
import { KubernetesNodeInfoSource } from './node-info-k8s.js'
import { DirNodeInfoSource, type NodeInfoSource } from './node-info-source.js'

export function nodeInfoSourceFor(choice: NodeInfoSourceOption, nodeName: string, log: Logger): NodeInfoSource {
  if (choice.source === 'dir') return new DirNodeInfoSource({ dir: choice.dir, nodeName, log })
  return new KubernetesNodeInfoSource({
    nodeName,
    kubeconfigFile: choice.kubeconfig,
    namespace: choice.namespace,
    deleteOnClose: choice.deleteOnExit,
    log,
  })
}
