/**
 * Every citation of our reference documents in the repository resolves: `reference/<file>.md §N` (or
 * `docs/reference/<file>.md §N`, or the old `shared/reference/<file>.md §N`) names one of the documents under
 * docs/reference/, and that document has a heading numbered N (`## N. Title` or `### N.M Title`, outside code
 * blocks). Forms understood after the file name: `§2.4, §3`, `§1.2, §1.3 and §2.1`, ranges `§3.1–3.2` / `§2–3`
 * (both ends must exist), and a quoted anchor `, "Our stance"` / `§3, "Endpoint index maintenance"` (the text must
 * occur in the document, inside the cited section when one is cited). A citation may be broken over a comment
 * line (`reference/` at the end of one line, `name.md` at the start of the next).
 *
 * Scans the tracked files (git ls-files) ending in .ts, .mjs, .c, .h, .md and .proto (the protos cite the
 * workload API document too). Bare `reference §N` / `§N` without a file name are not checked: the document they
 * mean is implied by the file they are in.
 */
import { execFileSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'

const ROOT = execFileSync('git', ['rev-parse', '--show-toplevel'], {
  cwd: dirname(fileURLToPath(import.meta.url)),
  encoding: 'utf8',
}).trim()
const REFERENCE_DIR = join(ROOT, 'docs', 'reference')
const SELF = fileURLToPath(import.meta.url)

/** Our documents (docs/reference/, copied from the workspace's shared/reference/). */
const OURS = ['istio-l4-authz.md', 'istio-workload-api.md', 'kmesh-dataplane.md', 'local-config.md']

/**
 * `reference/<name>.md` strings that are other projects' documents, not ours: none of them is in a tracked
 * file today (they occur in node_modules, which git ls-files does not list), but should one be quoted, it is
 * not a citation of docs/reference/.
 */
const EXTERNAL: Record<string, string> = {
  'run.md': "turbo's own docs (node_modules/turbo/docs/README.md): the `turbo run` reference page",
  'index.md': "turbo's own docs: the index of its reference pages",
  'watch.md': "turbo's own docs: the `turbo watch` reference page",
  'package-configurations.md': "turbo's own docs: per-package turbo.json configuration",
  'options-overview.md': "turbo's own docs: the overview of turbo's options",
}

/**
 * Citations known not to resolve, as `path reference/<file>.md §N` (the citation text as matched). Each is reported as a todo instead of a
 * failure until the citing code or the document is fixed; the test fails if an entry here starts resolving (so
 * the list cannot go stale).
 */
const KNOWN_BROKEN: readonly string[] = []

const EXTENSIONS = /\.(ts|mjs|c|h|md|proto)$/

// `reference/` possibly broken over a comment line, the file name, then the section list and an optional anchor.
const SECTION = String.raw`§\s?(\d+(?:\.\d+)*)(?:\s?[–-]\s?(\d+(?:\.\d+)*))?`
const CITATION = new RegExp(
  String.raw`reference/(?:[ \t]*\r?\n[ \t]*(?:\*|//|#)?[ \t]*)?(?<doc>[A-Za-z0-9_-]+)\.md` +
    String.raw`\`?(?<sections>(?:[ \t]*(?:,|and|or)?[ \t]*` +
    SECTION.replace(/\((?!\?)/g, '(?:') +
    String.raw`)*)` +
    String.raw`(?:,?[ \t]*"(?<anchor>[^"\n]+)")?`,
  'g',
)

interface Citation {
  where: string // path:line
  doc: string
  sections: string[]
  anchor?: string | undefined
  text: string
}

function trackedFiles(): string[] {
  return execFileSync('git', ['ls-files', '-z'], { cwd: ROOT, encoding: 'utf8', maxBuffer: 64 << 20 })
    .split('\0')
    .filter((f) => EXTENSIONS.test(f) && !f.includes('node_modules/'))
}

function citationsIn(path: string, text: string): Citation[] {
  const out: Citation[] = []
  const lineStarts = [0]
  for (let i = 0; i < text.length; i++) if (text[i] === '\n') lineStarts.push(i + 1)
  const lineOf = (index: number): number => {
    let lo = 0
    let hi = lineStarts.length - 1
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1
      if (lineStarts[mid]! <= index) lo = mid
      else hi = mid - 1
    }
    return lo + 1
  }
  for (const m of text.matchAll(CITATION)) {
    const sections: string[] = []
    for (const s of (m.groups!.sections ?? '').matchAll(new RegExp(SECTION, 'g'))) {
      sections.push(s[1]!)
      if (s[2]) sections.push(s[2])
    }
    out.push({
      where: `${path}:${lineOf(m.index)}`,
      doc: `${m.groups!.doc}.md`,
      sections,
      anchor: m.groups!.anchor,
      text: m[0].replace(/\s*\n\s*(?:\*|\/\/|#)?\s*/g, ''),
    })
  }
  return out
}

interface Heading {
  number: string
  line: number
}
interface Document {
  lines: string[]
  headings: Heading[]
}

/** Numbered headings (`## 2. Maps`, `### 2.3 Struct layouts`), skipping fenced code (YAML comments start with #). */
function readDocument(file: string): Document {
  const lines = readFileSync(file, 'utf8').split('\n')
  const headings: Heading[] = []
  let fence: string | undefined
  lines.forEach((line, i) => {
    const f = /^\s*(```|~~~)/.exec(line)
    if (f) {
      if (fence === undefined) fence = f[1]
      else if (fence === f[1]) fence = undefined
      return
    }
    if (fence !== undefined) return
    const h = /^#{1,6}\s+§?(\d+(?:\.\d+)*)\.?(?:\s|$)/.exec(line)
    if (h) headings.push({ number: h[1]!, line: i })
  })
  return { lines, headings }
}

/** The lines of section `n`: from its heading to the next heading of the same or a higher level. */
function sectionText(doc: Document, n: string): string | undefined {
  const at = doc.headings.findIndex((h) => h.number === n)
  if (at < 0) return undefined
  const depth = n.split('.').length
  const next = doc.headings.slice(at + 1).find((h) => h.number.split('.').length <= depth)
  return doc.lines.slice(doc.headings[at]!.line, next ? next.line : doc.lines.length).join('\n')
}

const documents = new Map<string, Document | undefined>()
function documentFor(name: string): Document | undefined {
  if (!documents.has(name)) {
    const file = join(REFERENCE_DIR, name)
    documents.set(name, OURS.includes(name) && existsSync(file) ? readDocument(file) : undefined)
  }
  return documents.get(name)
}

/** Why a citation does not resolve, or undefined when it does. */
function problemsOf(c: Citation): string[] {
  if (!OURS.includes(c.doc)) return [`docs/reference/${c.doc} is not one of our reference documents`]
  const doc = documentFor(c.doc)
  if (!doc) return [`docs/reference/${c.doc} does not exist`]
  const problems: string[] = []
  for (const n of c.sections)
    if (sectionText(doc, n) === undefined) problems.push(`docs/reference/${c.doc} has no heading for §${n}`)
  if (c.anchor) {
    const last = c.sections.at(-1)
    const scope = (last && sectionText(doc, last)) ?? doc.lines.join('\n')
    if (!scope.toLowerCase().includes(c.anchor.toLowerCase())) {
      problems.push(`docs/reference/${c.doc}${last ? ` §${last}` : ''} does not contain "${c.anchor}"`)
    }
  }
  return problems
}

const all: Citation[] = []
for (const path of trackedFiles()) {
  const file = join(ROOT, path)
  if (!existsSync(file)) continue // deleted in the working tree, not yet committed
  if (path.startsWith('docs/reference/')) continue // the documents themselves (their top note names the form)
  if (join(ROOT, path) === SELF) continue // this file: its strings are examples and known-broken keys, not citations
  all.push(...citationsIn(path, readFileSync(file, 'utf8')))
}
const ours = all.filter((c) => !(c.doc in EXTERNAL))
const external = all.filter((c) => c.doc in EXTERNAL)

t.test('the four reference documents are in docs/reference, each with its note', async (t) => {
  for (const name of OURS) {
    const file = join(REFERENCE_DIR, name)
    t.ok(existsSync(file), `docs/reference/${name} exists`)
    if (!existsSync(file)) continue
    t.match(
      readFileSync(file, 'utf8').split('\n')[0],
      `docs/reference/${name} §N`,
      `${name} opens with the note on how it is cited`,
    )
    t.ok(documentFor(name)!.headings.length > 5, `${name}: numbered headings found`)
  }
})

t.test('the scanner finds the citations (a broken pattern would pass vacuously)', async (t) => {
  t.ok(ours.length >= 80, `${ours.length} citations of docs/reference found`)
  t.ok(
    ours.some((c) => c.sections.length > 1),
    'lists of sections are parsed',
  )
  t.ok(
    ours.some((c) => c.anchor),
    'quoted anchors are parsed',
  )
  const sample = citationsIn('x.ts', ' * (ztunnel, reference/\n * istio-workload-api.md §1.2, §3.1–3.2 and §2) "x"')
  t.same(
    sample.map((c) => [c.doc, c.sections]),
    [['istio-workload-api.md', ['1.2', '3.1', '3.2', '2']]],
    'a citation broken over a comment line',
  )
  t.same(
    citationsIn('x.md', '(`shared/reference/local-config.md` §2–3)').map((c) => c.sections),
    [['2', '3']],
    'a range after a code span',
  )
})

t.test('every citation of docs/reference resolves to an existing file and section', async (t) => {
  // Known-broken entries are keyed by path and citation text, not line, so edits above them do not unlist them.
  const keyOf = (c: Citation): string => `${c.where.replace(/:\d+$/, '')} ${c.text.trim()}`
  const known = new Set(KNOWN_BROKEN)
  const fresh: string[] = []
  const stillBroken = new Set<string>()
  for (const c of ours) {
    const problems = problemsOf(c)
    if (!problems.length) continue
    const key = keyOf(c)
    stillBroken.add(key)
    for (const p of problems) {
      const line = `${c.where} ${c.text.trim()}: ${p}`
      if (known.has(key)) t.todo(`known broken: ${line}`)
      else fresh.push(line)
    }
  }
  t.same(
    KNOWN_BROKEN.filter((k) => !stillBroken.has(k)),
    [],
    'every KNOWN_BROKEN entry is still broken (remove fixed ones)',
  )
  t.same(fresh, [], fresh.length ? `unresolved citations:\n${fresh.join('\n')}` : 'no unresolved citations')
  t.comment(`${ours.length} citations checked in ${new Set(ours.map((c) => c.where.replace(/:\d+$/, ''))).size} files`)
  if (process.env.DOC_CITATIONS_LIST) {
    for (const c of ours) t.comment(`${c.where} ${c.doc} [${c.sections.join(' ')}]${c.anchor ? ` "${c.anchor}"` : ''}`)
  }
})

t.test('citations of external documents are listed, not checked', async (t) => {
  for (const c of external) t.comment(`external (${EXTERNAL[c.doc]}): ${c.where} ${c.text}`)
  t.pass(`${external.length} external citations in tracked files`)
})
