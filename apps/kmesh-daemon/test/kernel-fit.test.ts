// The one "does it fit the kernel records" check (processor/kernel-fit.ts), as both sources see it.
import t from 'tap'
import { MAX_PORT_COUNT, MAX_SERVICE_COUNT } from '@kmesh-ts/kernel-abi'
import { KERNEL_LIMITS, servicePortsProblem, workloadServicesProblem } from '../src/processor/kernel-fit.js'
import { workloadFromXds, UnappliableResource } from '../src/sources/cluster/xds-convert.js'
import { refused, service, workload } from './mesh-file-helpers.js'

t.test("the limits are the C headers' (through the generated kernel-abi module)", async (t) => {
  t.same(KERNEL_LIMITS, { portsPerService: MAX_PORT_COUNT, servicesPerWorkload: MAX_SERVICE_COUNT })
  t.equal(servicePortsProblem(MAX_PORT_COUNT), undefined)
  t.equal(workloadServicesProblem(MAX_SERVICE_COUNT), undefined)
})

t.test('the mesh file and cluster mode give the same message', async (t) => {
  const n = MAX_SERVICE_COUNT + 1
  const message = workloadServicesProblem(n)!
  t.match(
    message,
    new RegExp(`belongs to ${n} services, but the kernel backend record holds at most ${MAX_SERVICE_COUNT}`),
  )
  const services = Object.fromEntries(Array.from({ length: n }, (_, i) => [`ns/s${i}.ns`, { ports: {} }]))
  const xdsWorkload = { uid: 'c//v1/Pod/ns/w', services, addresses: [] } as unknown as Parameters<
    typeof workloadFromXds
  >[0]
  t.throws(() => workloadFromXds(xdsWorkload), new UnappliableResource(`workload c//v1/Pod/ns/w: ${message}`))
  const map = `{${Array.from({ length: n }, (_, i) => `"ns/s${i}.ns": {80: 80}`).join(', ')}}`
  t.match(refused(`workloads:\n${workload('w', '', map)}\n`), [{ key: 'services', message }])
  const ports = `ports: {${Array.from({ length: MAX_PORT_COUNT + 1 }, (_, i) => `${i + 1}: ${i + 1}`).join(', ')}}`
  t.match(refused(`services:\n${service('ns', 's.ns', ports)}\n`), [
    { key: 'ports', message: servicePortsProblem(MAX_PORT_COUNT + 1)! },
  ])
})
