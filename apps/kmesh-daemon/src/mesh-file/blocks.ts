/**
 * Whether a file can be read entry by entry, and where its entries are. The yaml package keeps about
 * 75 bytes of tree per byte of text, so a large file is not composed whole: when the top level is plain
 * block style, each `- ` item of `workloads:`, `services:` and `policies:` is parsed on its own
 * (chunked.ts). The layout accepted here is strict so that an entry parsed alone means what it means in
 * the whole document; anything else is read whole (whole.ts), up to MAX_WHOLE_PARSE_BYTES.
 */

export type SectionName = 'workloads' | 'services' | 'policies'

export interface SectionPlan {
  key: SectionName
  /** 1-based line of the `key:` line. */
  keyLine: number
  /** `key: []` on one line. */
  inlineEmpty: boolean
  /** Offsets of each item: from the start of its `- ` line to the start of the next item or section. */
  starts: number[]
  ends: number[]
}

export type BlockPlan = { ok: true; sections: SectionPlan[] } | { ok: false; reason: string }

const SECTION_LINE = /^(workloads|services|policies):[ \t]*(\[\][ \t]*)?(?:#.*)?$/
/** `&anchor` or `*alias` where a node may start; also matches inside quoted text (then: read whole). */
const ANCHOR = /(?:^|[\s,[{])[&*][^\s,[\]{}]/

const no = (reason: string): BlockPlan => ({ ok: false, reason })

export function planBlocks(text: string): BlockPlan {
  if (/\r(?!\n)/.test(text)) return no('a carriage return without a line feed')
  if (text.includes('\uFEFF')) return no('a byte order mark')
  const sections: SectionPlan[] = []
  let cur: SectionPlan | undefined
  let itemIndent = -1
  const close = (at: number): void => {
    if (cur && cur.starts.length > cur.ends.length) cur.ends.push(at)
  }
  let lineNo = 0
  for (let i = 0; i < text.length; ) {
    lineNo++
    let eol = text.indexOf('\n', i)
    if (eol < 0) eol = text.length
    const next = eol + 1
    let line = text.slice(i, eol)
    if (line.endsWith('\r')) line = line.slice(0, -1)
    let j = 0
    while (line.charCodeAt(j) === 32) j++
    const rest = line.slice(j)
    if (rest.trim() === '' || rest.startsWith('#')) {
      i = next
      continue
    }
    if (rest.startsWith('\t')) return no(`line ${lineNo}: a tab in the indentation`)
    if (ANCHOR.test(line)) return no(`line ${lineNo}: an anchor or alias`)
    const itemStart = rest === '-' || rest.startsWith('- ')
    if (j === 0) {
      const m = SECTION_LINE.exec(line)
      if (m) {
        close(i)
        cur = { key: m[1] as SectionName, keyLine: lineNo, inlineEmpty: m[2] !== undefined, starts: [], ends: [] }
        sections.push(cur)
        itemIndent = -1
      } else if (cur && !cur.inlineEmpty && itemIndent <= 0 && itemStart) {
        close(i)
        itemIndent = 0
        cur.starts.push(i)
      } else {
        return no(
          `line ${lineNo}: a top-level line other than \`workloads:\`, \`services:\` or \`policies:\` with the list below it`,
        )
      }
    } else if (!cur || cur.inlineEmpty) {
      return no(`line ${lineNo}: indented content outside a block list`)
    } else if (itemIndent < 0 || j === itemIndent) {
      if (!itemStart) return no(`line ${lineNo}: a section that is not a block list of \`- \` items`)
      close(i)
      itemIndent = j
      cur.starts.push(i)
    } else if (j < itemIndent) {
      return no(`line ${lineNo}: content indented less than the list items`)
    }
    i = next
  }
  close(text.length)
  return { ok: true, sections }
}
