import type { Workload } from './mesh.js'

/**
 * A workload with every field at its default: what a mesh-file entry that sets nothing reads as (the reader then
 * fills in what the entry gives), and a base for building one field by field.
 */
export function blankWorkload(): Workload {
  return {
    uid: '',
    name: '',
    namespace: '',
    workloadIps: [],
    hostname: '',
    network: '',
    protocol: 'TCP',
    networkMode: 'Standard',
    trustDomain: '',
    serviceAccount: '',
    clusterId: '',
    node: '',
    workloadName: '',
    workloadType: '',
    canonicalName: '',
    canonicalRevision: '',
    status: 'Healthy',
    capacity: 1,
    nativeTunnel: false,
    authorizationPolicies: [],
    services: {},
  }
}
