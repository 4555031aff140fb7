/**
 * The generated mesh for bench/xds, as Istio workload API resources (AddressInit of @kmesh-ts/xds-client).
 * Addresses are map keys only, never reached: service VIPs from 127.32.0.0, workload IPs from 127.64.0.0 (a
 * moved workload takes 127.128.0.0 + its index). Workload i is an endpoint of service i mod S, so with 100k
 * workloads and 10k services each service has 10 endpoints.
 */
export const NAMESPACE = 'bench'
const PORTS = [{ servicePort: 80, targetPort: 8080 }]

const ipFrom = (base, i) => Uint8Array.of(127, base + (i >>> 16), (i >>> 8) & 255, i & 255)
export const serviceHost = (j) => `svc-${j}.${NAMESPACE}.svc.cluster.local`
export const serviceKey = (j) => `${NAMESPACE}/${serviceHost(j)}`
export const workloadUid = (i) => `Kubernetes//Pod/${NAMESPACE}/w-${i}`

export function service(j) {
  return {
    service: {
      name: `svc-${j}`,
      namespace: NAMESPACE,
      hostname: serviceHost(j),
      addresses: [{ network: '', address: ipFrom(32, j) }],
      ports: PORTS,
    },
  }
}

/** Workload i; `moved` gives it another address, `unhealthy` takes it out of its service's endpoints. */
export function workload(i, services, { moved = false, unhealthy = false } = {}) {
  return {
    workload: {
      uid: workloadUid(i),
      name: `w-${i}`,
      namespace: NAMESPACE,
      node: `node-${i % 50}`,
      serviceAccount: 'bench',
      addresses: [ipFrom(moved ? 128 : 64, i)],
      status: unhealthy ? 1 : 0,
      services: { [serviceKey(i % services)]: { ports: PORTS } },
    },
  }
}

export function meshResources(workloads, services) {
  const out = []
  for (let j = 0; j < services; j++) out.push(service(j))
  for (let i = 0; i < workloads; i++) out.push(workload(i, services))
  return out
}

/** --map-size arguments with room for the mesh and for the changes the benchmark makes. */
export function mapSizeArgs(workloads, services) {
  const room = 1024
  return [
    '--map-size',
    `km_backend=${workloads + room}`,
    '--map-size',
    `km_endpoint=${workloads + room}`,
    '--map-size',
    `km_service=${services + room}`,
    '--map-size',
    `km_frontend=${workloads + services + room}`,
  ]
}

/**
 * N authorization policies of the bench namespace (NAMESPACE scope, so each applies to every workload on the
 * daemon's node): policy k allows the bench service account to port 8080 + k. Every workload's identity is
 * one the policies test, so a change that took the wrong path would show in the kernel's decisions.
 */
export function policies(n) {
  return Array.from({ length: n }, (_, k) => ({
    name: `allow-${k}`,
    namespace: NAMESPACE,
    scope: 1,
    action: 0,
    rules: [
      {
        clauses: [
          {
            matches: [
              {
                principals: [{ exact: `spiffe://cluster.local/ns/${NAMESPACE}/sa/bench` }],
                destinationPorts: [8080 + k],
              },
            ],
          },
        ],
      },
    ],
  }))
}
