// Re-reading an edited mesh file item by item (src/mesh-file/item-memo.ts) against reading it whole: after random
// edits of generated and fixture files, whenever the memo answers, its result equals the full reader's (config,
// warnings, not-enforced list) and the full reader found no problem; plain edits are answered by re-reading only
// the items they touched, and the unchanged resources are the very objects of the previous read.
import t from 'tap'
import { readdirSync, readFileSync } from 'node:fs'
import { ItemMemo } from '../src/mesh-file/item-memo.js'
import { parseMeshText } from '../src/mesh-file/parse.js'
import {
  deltaBetween,
  deltaOfEdit,
  serviceKeyOf,
  type HeldMesh,
  type MeshConfig,
  type MeshDelta,
  type ResourceChanges,
} from '../src/model/index.js'

const SEED = Number(process.env['KMESH_ITEM_MEMO_SEED'] ?? Date.now() % 1e9)

const host = (j: number) => `svc-${j}.bench.svc.cluster.local`
const ip = (a: number, i: number) => `127.${a}.${(i >>> 8) & 255}.${i & 255}`
function workloadItem(i: number, services: number, a = 64): string {
  return [
    `- uid: c//v1/Pod/bench/w-${i}`,
    `  name: w-${i}`,
    '  namespace: bench',
    `  workloadIps: ["${ip(a, i)}"]`,
    `  services: {"bench/${host(i % services)}": {80: 8080}}`,
    '',
  ].join('\n')
}
function serviceItem(j: number): string {
  return [
    `- name: svc-${j}`,
    '  namespace: bench',
    `  hostname: ${host(j)}`,
    `  vips: ["/${ip(32, j)}"]`,
    '  ports: {80: 8080}',
    '',
  ].join('\n')
}

function heldOf(config: MeshConfig): HeldMesh {
  return {
    workloads: new Map(config.workloads.map((w) => [w.uid, w])),
    services: new Map(config.services.map((s) => [serviceKeyOf(s), s])),
  }
}

/** A delta with its lists in one order, to compare two that name the same changes. */
function sorted(d: { delta: MeshDelta; changes: ResourceChanges }) {
  const names = (xs: readonly { uid?: string; namespace?: string; hostname?: string }[] | undefined) =>
    (xs ?? []).map((x) => JSON.stringify(x)).sort()
  const kinds = (k: ResourceChanges['workloads']) => ({
    added: [...k.added].sort(),
    changed: [...k.changed].sort(),
    removed: [...k.removed].sort(),
  })
  return {
    upsertWorkloads: names(d.delta.upsertWorkloads),
    removeWorkloads: [...(d.delta.removeWorkloads ?? [])].sort(),
    upsertServices: names(d.delta.upsertServices),
    removeServices: [...(d.delta.removeServices ?? [])].sort(),
    workloads: kinds(d.changes.workloads),
    services: kinds(d.changes.services),
  }
}

function full(text: string) {
  const { result, error } = parseMeshText(text, 'mesh.yaml')
  return { result, error }
}

t.test('plain edits re-read only the items they touch; the rest are the same objects', async (t) => {
  const w = Array.from({ length: 50 }, (_, i) => workloadItem(i, 20))
  const s = Array.from({ length: 20 }, (_, j) => serviceItem(j))
  const text = `workloads:\n${w.join('')}services:\n${s.join('')}policies: []\n`
  const first = full(text).result!
  const memo = ItemMemo.of(text, first)!
  t.ok(memo, 'a clean read leaves a memo')
  // workload 7 moves; a workload is added; service 3 is removed
  const w2 = [...w]
  w2[7] = workloadItem(7, 20, 65)
  w2.push(workloadItem(50, 20))
  const s2 = s.filter((_, j) => j !== 3 && j !== 13 && j !== 23)
  // w-3 and w-23 and w-43 listed svc-3: drop them too, or the checks across entries would warn (dangling service)
  const w3 = w2.filter((_, i) => i % 20 !== 3 && i % 20 !== 13)
  const edited = `workloads:\n${w3.join('')}services:\n${s2.join('')}policies: []\n`
  const again = memo.reread(edited, 'mesh.yaml')
  const reference = full(edited)
  t.notOk(reference.error, 'the edited file is clean')
  t.ok(again, 'the memo answers')
  t.equal(again!.parsedItems, 2, 'two items parsed: the moved and the new workload')
  t.same(again!.result, reference.result)
  const byUid = new Map(first.config.workloads.map((x) => [x.uid, x]))
  const kept = again!.result.config.workloads.filter((x) => byUid.get(x.uid) === x).length
  t.equal(kept, again!.result.config.workloads.length - 2, 'unchanged workloads are the objects of the first read')
})

t.test('edits inside one section are answered from their span: the edge cases of the span', async (t) => {
  const w = Array.from({ length: 6 }, (_, i) => workloadItem(i, 4))
  const s = Array.from({ length: 4 }, (_, j) => serviceItem(j))
  const file = (ws: string[], ss: string[], tail = 'policies: []\n') =>
    `workloads:\n${ws.join('')}services:\n${ss.join('')}${tail}`
  const base = file(w, s)
  const memo = ItemMemo.of(base, full(base).result!)!
  const cases: { name: string; text: string; how: string | undefined; parsed?: number }[] = [
    { name: 'the same text', text: base, how: 'unchanged', parsed: 0 },
    {
      name: 'the first item of a section edited',
      text: file([workloadItem(0, 4, 70), ...w.slice(1)], s),
      how: 'span',
      parsed: 1,
    },
    {
      name: 'the last item of the last section edited',
      text: file(w, [...s.slice(0, 3), serviceItem(3).replace('80: 8080', '80: 9090')]),
      how: 'span',
      parsed: 1,
    },
    {
      name: 'a comment before the first item',
      text: file(w, s).replace('workloads:\n', 'workloads:\n# note\n'),
      how: 'span',
      parsed: 0,
    },
    // a comment after an item is part of it (blocks.ts): that item's text changed
    {
      name: 'a comment between two items',
      text: file([...w.slice(0, 3), '# note\n', ...w.slice(3)], s),
      how: 'span',
      parsed: 1,
    },
    {
      name: 'an item inserted between two others',
      text: file([...w.slice(0, 3), workloadItem(9, 4), ...w.slice(3)], s),
      how: 'span',
      parsed: 1,
    },
    { name: 'an item removed', text: file([...w.slice(0, 2), ...w.slice(3)], s), how: 'span', parsed: 0 },
    {
      name: 'a field appended to an item',
      text: file([...w.slice(0, 2), `${w[2]}  node: n1\n`, ...w.slice(3)], s),
      how: 'span',
      parsed: 1,
    },
    // the edit reaches a section's header: the whole file is split again
    { name: 'the last section removed', text: base.replace('policies: []\n', ''), how: 'items', parsed: 0 },
    {
      name: 'two sections edited at once',
      text: file(
        [workloadItem(0, 4, 70), ...w.slice(1)],
        [serviceItem(0).replace('80: 8080', '80: 9090'), ...s.slice(1)],
      ),
      how: 'items',
      parsed: 2,
    },
    // not the full reader's answer: declined
    {
      name: 'the first item indented differently',
      text: file(
        w.map((x, i) => (i === 0 ? x.replace(/^/gm, '  ').trimEnd() + '\n' : x)),
        s,
      ),
      how: undefined,
    },
    {
      name: 'a workload naming a service no entry defines',
      text: file([...w, workloadItem(7, 99)], s),
      how: undefined,
    },
    { name: 'a uid given twice', text: file([...w, workloadItem(1, 4)], s), how: undefined },
  ]
  for (const c of cases) {
    const again = memo.reread(c.text, 'mesh.yaml')
    const reference = full(c.text)
    t.equal(again?.how, c.how, `${c.name}: answered by ${c.how ?? 'the full reader'}`)
    if (!again) continue
    t.notOk(reference.error, `${c.name}: the full reader finds no problem`)
    t.same(again.result, reference.result, `${c.name}: the same result as the full reader`)
    if (c.parsed !== undefined) t.equal(again.parsedItems, c.parsed, `${c.name}: ${c.parsed} items parsed`)
  }
})

t.test(
  `random edits: the memo answers only with what the full reader says (seed ${SEED}, KMESH_ITEM_MEMO_SEED)`,
  async (t) => {
    let state = SEED >>> 0 || 1
    const rnd = (n: number): number => {
      state = (Math.imul(state, 1103515245) + 12345) >>> 0
      return (state >>> 8) % n
    }
    const fixtures = new URL('./fixtures/mesh-file/', import.meta.url)
    const bases = [
      `workloads:\n${Array.from({ length: 30 }, (_, i) => workloadItem(i, 10)).join('')}services:\n${Array.from({ length: 10 }, (_, j) => serviceItem(j)).join('')}`,
      ...readdirSync(fixtures)
        .filter((f) => f.endsWith('.yaml'))
        .map((f) => readFileSync(new URL(f, fixtures), 'utf8')),
    ]
    const edits: ((lines: string[]) => void)[] = [
      (l) => l.splice(rnd(l.length), 1), // drop a line
      (l) => {
        const i = rnd(l.length)
        l.splice(i, 0, l[i]!) // repeat a line
      },
      (l) => {
        const i = rnd(l.length)
        l[i] = l[i]!.replace(/\d/, String(rnd(10))) // change a digit
      },
      (l) => {
        const i = rnd(l.length)
        l[i] = l[i]!.replace(/[a-z]/, 'x') // change a letter
      },
      (l) => l.splice(rnd(l.length), 0, '# a comment'),
      (l) => l.splice(rnd(l.length), 0, ''),
      (l) => l.splice(rnd(l.length), 0, '  unknownField: 1'),
      (l) => {
        const i = rnd(l.length)
        const j = rnd(l.length)
        ;[l[i], l[j]] = [l[j]!, l[i]!] // swap two lines
      },
      (l) =>
        l.push(
          ...workloadItem(900 + rnd(5), 10)
            .trimEnd()
            .split('\n'),
        ), // a new item at the end
      // problems only the checks across entries see: a uid given twice, a service no entry defines
      (l) => l.push(...workloadItem(rnd(30), 10).trimEnd().split('\n')),
      (l) => l.push(...workloadItem(950, 1000).trimEnd().split('\n')),
    ]
    let answered = 0
    let declined = 0
    let namedDeltas = 0
    const how = { unchanged: 0, span: 0, items: 0 }
    for (let round = 0; round < 400; round++) {
      const base = bases[rnd(bases.length)]!
      const first = full(base)
      if (first.error || first.result!.warnings.length > 0) continue
      let memo = ItemMemo.of(base, first.result!)
      if (!memo) continue
      // The mesh a daemon holds once the memo's file is applied.
      let held = heldOf(first.result!.config)
      let text = base
      for (let step = 0; step < 4; step++) {
        const lines = text.split('\n')
        for (let k = 1 + rnd(2); k > 0; k--) edits[rnd(edits.length)]!(lines)
        text = lines.join('\n')
        const again = memo.reread(text, 'mesh.yaml')
        const reference = full(text)
        if (!again) {
          declined++
          if (!reference.error && reference.result!.warnings.length === 0) {
            const next = ItemMemo.of(text, reference.result!)
            if (next) [memo, held] = [next, heldOf(reference.result!.config)]
          }
          continue
        }
        answered++
        how[again.how]++
        if (reference.error || JSON.stringify(again.result) !== JSON.stringify(reference.result)) {
          t.same(
            { result: again.result },
            { result: reference.result, error: reference.error?.problems },
            `round ${round} step ${step}: ${JSON.stringify(text).slice(0, 2000)}`,
          )
          return
        }
        // What the edit took out and put in is the delta a whole-mesh diff finds.
        if (again.edit) {
          namedDeltas++
          const known = deltaOfEdit(held, again.edit)
          const whole = deltaBetween(held, again.result.config)
          if (!known || JSON.stringify(sorted(known)) !== JSON.stringify(sorted(whole))) {
            t.same(known && sorted(known), sorted(whole), `round ${round} step ${step}: the edit's delta`)
            return
          }
        }
        memo = again.memo
        held = heldOf(again.result.config)
      }
    }
    t.ok(
      answered > 30 && declined > 30,
      `${answered} re-reads answered by the memo, ${declined} left to the full reader`,
    )
    t.ok(how.span > 20 && how.items > 5, `answered from the edited span ${how.span}, from all items ${how.items}`)
    t.ok(namedDeltas >= how.span, `${namedDeltas} edits named their delta, each the one a whole-mesh diff finds`)
  },
)
