/**
 * The enrolment rule (src/node/enrol-rule.ts) as a table: Kmesh's ShouldEnroll cases, our case handling, and the
 * `ambient` opt-in.
 */
import t from 'tap'
import { shouldEnrol, type EnrolRuleOptions, type NamespaceFacts, type PodFacts } from '../src/node/enrol-rule.js'

const MODE = 'istio.io/dataplane-mode'
const pod = (labels: Record<string, string> = {}, extra: Partial<PodFacts> = {}): PodFacts => ({
  metadata: { labels, annotations: {}, ...extra.metadata },
  spec: { hostNetwork: false, ...extra.spec },
})
const ns = (labels: Record<string, string> = {}): NamespaceFacts => ({ metadata: { labels } })
const sidecar = { metadata: { annotations: { 'sidecar.istio.io/status': '{"containers":["istio-proxy"]}' } } }
const waypoint = { 'gateway.istio.io/managed': 'istio.io-mesh-controller' }

const rows: [string, PodFacts, NamespaceFacts | undefined, EnrolRuleOptions, boolean, RegExp][] = [
  ['namespace kmesh', pod(), ns({ [MODE]: 'kmesh' }), {}, true, /namespace label/],
  ['namespace Kmesh (the case Kmesh documents)', pod(), ns({ [MODE]: 'Kmesh' }), {}, true, /namespace label/],
  ['namespace KMESH', pod(), ns({ [MODE]: 'KMESH' }), {}, true, /namespace label/],
  ['pod kmesh, namespace unlabelled', pod({ [MODE]: 'kmesh' }), ns(), {}, true, /pod label/],
  ['pod Kmesh, namespace none', pod({ [MODE]: 'Kmesh' }), ns({ [MODE]: 'none' }), {}, true, /pod label/],
  ['pod kmesh, namespace unknown', pod({ [MODE]: 'kmesh' }), undefined, {}, true, /pod label/],
  ['pod none in a kmesh namespace', pod({ [MODE]: 'none' }), ns({ [MODE]: 'kmesh' }), {}, false, /pod label.*none/],
  ['pod None in a kmesh namespace', pod({ [MODE]: 'None' }), ns({ [MODE]: 'Kmesh' }), {}, false, /pod label/],
  [
    'pod ambient in a kmesh namespace (as Kmesh)',
    pod({ [MODE]: 'ambient' }),
    ns({ [MODE]: 'kmesh' }),
    {},
    true,
    /ns|namespace/,
  ],
  ['nothing labelled', pod(), ns(), {}, false, /no istio.io\/dataplane-mode label/],
  ['namespace unknown, pod unlabelled', pod(), undefined, {}, false, /namespace unknown/],
  ['other labels only', pod({ app: 'x' }), ns({ 'istio-injection': 'enabled' }), {}, false, /no istio/],
  ['namespace ambient (not ours by default)', pod(), ns({ [MODE]: 'ambient' }), {}, false, /namespace label.*ambient/],
  ['pod ambient (not ours by default)', pod({ [MODE]: 'ambient' }), ns(), {}, false, /no istio/],
  ['namespace ambient with acceptAmbient', pod(), ns({ [MODE]: 'ambient' }), { acceptAmbient: true }, true, /ambient/],
  ['pod ambient with acceptAmbient', pod({ [MODE]: 'ambient' }), ns(), { acceptAmbient: true }, true, /pod label/],
  [
    'pod none beats acceptAmbient',
    pod({ [MODE]: 'none' }),
    ns({ [MODE]: 'ambient' }),
    { acceptAmbient: true },
    false,
    /none/,
  ],
  ['namespace value with a typo', pod(), ns({ [MODE]: 'kmsh' }), {}, false, /kmsh/],
  ['empty value', pod({ [MODE]: '' }), ns({ [MODE]: '' }), {}, false, /namespace label/],
  [
    'hostNetwork pod, labelled',
    pod({ [MODE]: 'kmesh' }, { spec: { hostNetwork: true } }),
    ns({ [MODE]: 'kmesh' }),
    {},
    false,
    /hostNetwork/,
  ],
  ['sidecar pod in a kmesh namespace', pod({}, sidecar), ns({ [MODE]: 'kmesh' }), {}, false, /sidecar/],
  ['sidecar pod labelled kmesh', pod({ [MODE]: 'kmesh' }, sidecar), ns(), {}, false, /sidecar/],
  ['waypoint in a kmesh namespace', pod(waypoint), ns({ [MODE]: 'kmesh' }), {}, false, /waypoint/],
  [
    'waypoint, value in another case',
    pod({ 'gateway.istio.io/managed': 'Istio.io-Mesh-Controller', [MODE]: 'kmesh' }),
    ns(),
    {},
    false,
    /waypoint/,
  ],
  [
    'another gateway controller is a pod like others',
    pod({ 'gateway.istio.io/managed': 'other' }),
    ns({ [MODE]: 'kmesh' }),
    {},
    true,
    /namespace/,
  ],
  ['a pod with no metadata at all', {}, ns({ [MODE]: 'kmesh' }), {}, true, /namespace label/],
]

for (const [name, p, n, o, enrol, reason] of rows) {
  t.test(name, async (t) => {
    const d = shouldEnrol(p, n, o)
    t.equal(d.enrol, enrol, `enrol: ${enrol}`)
    t.match(d.reason, reason, `reason: ${d.reason}`)
  })
}
