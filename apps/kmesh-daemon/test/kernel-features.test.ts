/**
 * The refusal a kernel that lacks a feature gets (unit: the probes are injected): every missing feature named with
 * its first kernel and what needs it; parts not started are not probed.
 */
import t from 'tap'
import { type KernelFeature, missingKernelFeatures, requireKernelFeatures } from '../src/dataplane/kernel-features.js'

const feature = (name: string, supported: boolean, part: KernelFeature['neededBy'], error?: string): KernelFeature => ({
  feature: name,
  since: '9.9',
  neededBy: part,
  why: `the ${name} job`,
  probe: () => (error ? { supported, error } : { supported }),
})

t.test('missing features are named with their kernel and their use; other parts are not probed', async (t) => {
  let probedTelemetry = false
  const features = [
    feature('have', true, 'connect'),
    feature('bpf_set_retval from cgroup/connect', false, 'connect'),
    feature('XDP', false, 'authz', 'EPERM'),
    { ...feature('ringbuf', false, 'telemetry'), probe: () => ((probedTelemetry = true), { supported: false }) },
  ]
  t.same(
    missingKernelFeatures(new Set(['connect', 'authz']), features).map((f) => f.feature),
    ['bpf_set_retval from cgroup/connect', 'XDP'],
  )
  t.notOk(probedTelemetry, 'telemetry is not probed when it is off')
  const err = t.throws(() => requireKernelFeatures(new Set(['connect', 'authz']), features)) as Error
  t.match(err.message, /lacks what kmesh-daemon needs/)
  t.match(err.message, /bpf_set_retval from cgroup\/connect \(Linux 9\.9\+\), for the bpf_set_retval/)
  t.match(err.message, /XDP \(Linux 9\.9\+\), for the XDP job \(the probe failed: EPERM\)/)
  t.match(err.message, /docs\/kernel-support\.md/)
  t.doesNotThrow(() => requireKernelFeatures(new Set(['connect']), [feature('have', true, 'connect')]))
})
