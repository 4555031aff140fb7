/**
 * Fuzz: 10,000 seeded mutations of the valid fixtures. Whatever the input, parseMeshFile returns or
 * throws a MeshFileError, every problem names the file, the entry and a line, and no case is slow.
 * Reproduce a failure with MESH_FUZZ_SEED=<seed printed below>.
 */
import t from 'tap'

import { MeshFileError, parseMeshFile } from '../src/mesh-file/index.js'
import { cases, SEED } from './mesh-file-fuzz-corpus.js'

const COUNT = 10_000
const CASE_BOUND_MS = 2000

t.test(`${COUNT} mutations (seed ${SEED})`, async (t) => {
  t.comment(`MESH_FUZZ_SEED=${SEED}`)
  let accepted = 0
  let refused = 0
  let slowest = 0
  const failures: string[] = []
  const started = Date.now()
  for (const c of cases(SEED, COUNT)) {
    const t0 = performance.now()
    try {
      parseMeshFile(c.input, 'fuzz.yaml')
      accepted++
    } catch (err) {
      if (!(err instanceof MeshFileError)) {
        failures.push(`${c.name}: threw ${String(err)}`)
        continue
      }
      refused++
      if (err.problems.length === 0) failures.push(`${c.name}: a MeshFileError without problems`)
      if (err.total < err.problems.length) failures.push(`${c.name}: total ${err.total} < ${err.problems.length}`)
      for (const p of err.problems) {
        if (p.file !== 'fuzz.yaml' || p.entry === '' || !(typeof p.line === 'number' && p.line >= 1)) {
          failures.push(`${c.name}: problem without file, entry or line: ${JSON.stringify(p).slice(0, 300)}`)
        }
      }
    }
    const ms = performance.now() - t0
    slowest = Math.max(slowest, ms)
    if (ms > CASE_BOUND_MS) failures.push(`${c.name}: took ${Math.round(ms)} ms`)
    if (failures.length > 20) break
  }
  t.comment(
    `accepted ${accepted}, refused ${refused}, slowest case ${Math.round(slowest)} ms, all in ${Date.now() - started} ms`,
  )
  t.same(failures, [], 'every case ends in a result or a well-formed MeshFileError, in time')
  t.equal(accepted + refused, COUNT)
  t.ok(accepted > 100 && refused > 100, 'the corpus has both accepted and refused files')
})
