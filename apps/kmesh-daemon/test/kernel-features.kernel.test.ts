/** This kernel has every feature of every part (the probes really run: libbpf loads a probe program per feature). */
import t from 'tap'
import { privilegedSkip } from '@kmesh-ts/testkit'
import { KERNEL_FEATURES, missingKernelFeatures } from '../src/dataplane/kernel-features.js'

const skip = privilegedSkip('bpf(2) to load libbpf probe programs and maps for each feature (kernel >= 5.18 for all)')

t.test('the probes find every feature here', { skip }, async (t) => {
  const parts = new Set(KERNEL_FEATURES.map((f) => f.neededBy))
  t.same(missingKernelFeatures(parts), [], `${KERNEL_FEATURES.length} features probed, none missing`)
})
