/**
 * The chunked reader (block-style files read entry by entry) and the whole-document reader give the
 * same result: the same config, or the same problems with the same lines, on every fixture, on the
 * existing tests' shapes and on the fuzz corpus.
 */
import t from 'tap'

import { parseMeshText } from '../src/mesh-file/parse.js'
import { cases, fixtureTexts, FIXTURE_NAMES, SEED } from './mesh-file-fuzz-corpus.js'
import { policy, service, workload } from './mesh-file-helpers.js'

function outcome(r: ReturnType<typeof parseMeshText>): unknown {
  return r.error ? { problems: r.error.problems, total: r.error.total, message: r.error.message } : r.result
}

function compare(input: string | Uint8Array): { route: string; same: boolean; auto: unknown; whole: unknown } {
  const auto = parseMeshText(input, 'm.yaml', 'auto')
  const whole = parseMeshText(input, 'm.yaml', 'whole')
  const a = outcome(auto)
  const w = outcome(whole)
  return { route: auto.route, same: JSON.stringify(a) === JSON.stringify(w), auto: a, whole: w }
}

t.test('fixtures: read in chunks, same as read whole', async (t) => {
  fixtureTexts().forEach((text, i) => {
    const r = compare(text)
    t.equal(r.route, 'chunked', `${FIXTURE_NAMES[i]} takes the chunked reader`)
    t.same(r.auto, r.whole, `${FIXTURE_NAMES[i]}`)
  })
})

t.test('hand-written shapes: problems, duplicates, comments, blank lists, warnings', async (t) => {
  const texts = [
    `workloads:\n${workload('a', 'protocol: tcp')}\n${workload('a', 'status: y')}\nservices:\n${service('ns', 'a', 'ports: {0: 1}')}\n`,
    `# lead\nworkloads:\n# c\n${workload('a')}\n\n# between\n${workload('b', 'waypoint: {destination: "ns/x", hboneMtlsPort: 15008}')}\npolicies:\n${policy('ns', 'p', '  scope: WorkloadSelector\n  action: Allow\n  dryRun: false', '  - []')}\n`,
    `services:\n${service('ns', 'a')}\nworkloads:\n${workload('a')}\nservices:\n${service('ns', 'b')}\n`,
    'workloads:\n# nothing\nservices: []\n',
    'workloads:\n-\n- uid: a\n',
    'workloads:\n  - uid: a\n    name: [\n',
    'workloads:\n- uid: a\n  services:\n    "ns/x": {80: 80}\n  namespace: n\n  workloadIps: []\n',
  ]
  for (const text of texts) {
    const r = compare(text)
    // A syntax error in a small file is reported by the whole-document reader, which sees the context.
    const route = text.includes('name: [\n') ? 'whole' : 'chunked'
    t.equal(r.route, route, JSON.stringify(text.slice(0, 40)))
    t.same(r.auto, r.whole)
  }
})

t.test(`fuzz corpus (seed ${SEED}): same outcome from both readers`, async (t) => {
  t.comment(`MESH_FUZZ_SEED=${SEED}`)
  let chunked = 0
  const diffs: unknown[] = []
  for (const c of cases(SEED, 4000)) {
    const r = compare(c.input)
    if (r.route === 'chunked') chunked++
    if (!r.same) diffs.push({ case: c.name, auto: r.auto, whole: r.whole })
    if (diffs.length >= 3) break
  }
  t.same(diffs, [], 'no case differs')
  t.comment(`${chunked} of 4000 cases read in chunks`)
  t.ok(chunked > 1500, 'most cases exercise the chunked reader')
})
