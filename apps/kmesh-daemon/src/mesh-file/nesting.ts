/**
 * A cheap scan for nesting depth, run before the yaml package sees the text: it composes nodes
 * recursively, so `[[[[…` 10,000 deep overflows the stack (and reports that dozens of times). The scan
 * follows flow brackets outside quotes and comments, and block levels by indentation (each `- ` of a
 * compact `- - x` counts as one). It may count a level or two too many on odd layouts, never fewer in
 * the shapes that recurse, and real mesh files nest about 10 deep against a bound of MAX_NESTING.
 */

const SPACE = 32
const TAB = 9
const DASH = 45
const CR = 13

/** Block scalar header at the end of a line (`key: |`, `- >-`, `x: |2 # c`): the lines below are text. */
const BLOCK_SCALAR = /(?:^|[ \t])[|>][-+0-9]*[ \t]*(?:#.*)?$/

/** The offset where nesting first exceeds `max`, or undefined. */
export function findDeepNesting(text: string, max: number): number | undefined {
  const stack: number[] = [] // indents of the open block levels
  let flow = 0
  let quote = 0 // the open quote character, 0 outside quotes
  let scalarIndent = -1 // inside a block scalar: lines indented more than this are its text
  for (let i = 0; i <= text.length; ) {
    let eol = text.indexOf('\n', i)
    if (eol < 0) eol = text.length
    let j = i
    while (j < eol && text.charCodeAt(j) === SPACE) j++
    const indent = j - i
    const c0 = text.charCodeAt(j)
    const blank = j >= eol || c0 === 35 /* # */ || c0 === CR || c0 === TAB
    if (scalarIndent >= 0 && quote === 0) {
      if (blank || indent > scalarIndent) {
        i = eol + 1
        continue
      }
      scalarIndent = -1
    }
    if (quote === 0 && flow === 0 && !blank) {
      while (stack.length > 0 && (stack[stack.length - 1] as number) >= indent) stack.pop()
      stack.push(indent)
      // `- - - x`: each dash opens a level at the column after it.
      let k = j
      while (text.charCodeAt(k) === DASH && text.charCodeAt(k + 1) === SPACE) {
        k += 2
        while (text.charCodeAt(k) === SPACE) k++
        stack.push(k - i)
        if (stack.length > max) return k
      }
      if (stack.length > max) return j
    }
    // A block scalar header needs `|` or `>` outside quotes: only such lines are matched against BLOCK_SCALAR
    // (a 20 MB file has a million lines, nearly none of them with either).
    let indicator = false
    for (let k = j; k < eol; k++) {
      const c = text.charCodeAt(k)
      if (quote === 34 /* " */) {
        if (c === 92 /* \ */) k++
        else if (c === 34) quote = 0
        continue
      }
      if (quote === 39 /* ' */) {
        if (c === 39) {
          if (text.charCodeAt(k + 1) === 39) k++
          else quote = 0
        }
        continue
      }
      if (c === 124 /* | */ || c === 62 /* > */) indicator = true
      const prev = k === i ? SPACE : text.charCodeAt(k - 1)
      const afterSpace = prev === SPACE || prev === TAB
      if (c === 35 /* # */ && afterSpace) break
      const tokenStart =
        k === j || afterSpace || (flow > 0 && (prev === 91 || prev === 123 || prev === 44 || prev === 58))
      if ((c === 34 || c === 39) && tokenStart) {
        quote = c
      } else if ((c === 91 /* [ */ || c === 123) /* { */ && (flow > 0 || tokenStart)) {
        flow++
        if (stack.length + flow > max) return k
      } else if ((c === 93 /* ] */ || c === 125) /* } */ && flow > 0) {
        flow--
      }
    }
    if (indicator && quote === 0 && flow === 0 && !blank && BLOCK_SCALAR.test(text.slice(j, eol).replace(/\r$/, ''))) {
      scalarIndent = indent
    }
    i = eol + 1
  }
  return undefined
}
