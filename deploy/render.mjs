#!/usr/bin/env node
// Renders deploy/chart the way `helm template --include-crds` does, for machines without helm (it is neither in
// Debian 12 nor on npm, and these machines reach no other registry). It understands only the part of Helm's
// template language the chart uses, and refuses anything else by file and line rather than render it wrongly:
//   {{ pipeline }}, {{- and -}} whitespace trimming, {{/* comments */}}, {{ if }} / {{ else }} / {{ end }};
//   values .Values.a.b, .Release.Name, .Release.Namespace, .Chart.Name, .Chart.Version, .Chart.AppVersion,
//   "strings", numbers, true/false; functions toYaml, nindent N, indent N, quote, default X (piped: the last
//   argument is the value piped in, as in Go templates).
// Values are the chart's values.yaml deep-merged with each --values file in order (maps merge, anything else
// replaces, as helm does), then checked against values.schema.json (helm checks it too).
// The chart is plain Helm: with helm installed, `helm template` renders the same objects.
//
// Usage: node deploy/render.mjs [--values FILE]... [--name RELEASE] [--namespace NS] [--out FILE]
//        (defaults: release kmesh-ts, namespace kmesh-system, output to stdout)
import { readFileSync, readdirSync, writeFileSync } from 'node:fs'
import { basename, dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import Ajv from 'ajv'
import YAML from 'yaml'

export const chartDir = join(dirname(fileURLToPath(import.meta.url)), 'chart')

export class TemplateError extends Error {}

// --- the template language subset ---

/** Splits a template into text and actions, applying {{- and -}} trimming. */
function lex(text, file) {
  const parts = []
  let at = 0
  let line = 1
  while (at < text.length) {
    const open = text.indexOf('{{', at)
    if (open < 0) {
      parts.push({ kind: 'text', text: text.slice(at) })
      break
    }
    const close = text.indexOf('}}', open)
    if (close < 0) throw new TemplateError(`${file}:${line}: "{{" without "}}"`)
    let before = text.slice(at, open)
    let inner = text.slice(open + 2, close)
    const actionLine = line + (text.slice(at, open).match(/\n/g)?.length ?? 0)
    if (inner.startsWith('- ') || inner === '-') {
      before = before.replace(/\s+$/, '')
      inner = inner.slice(1)
    }
    let trimAfter = false
    if (inner.endsWith(' -')) {
      trimAfter = true
      inner = inner.slice(0, -1)
    }
    parts.push({ kind: 'text', text: before })
    parts.push({ kind: 'action', source: inner.trim(), line: actionLine, file })
    line = actionLine + (inner.match(/\n/g)?.length ?? 0)
    at = close + 2
    if (trimAfter) {
      const rest = text.slice(at)
      const trimmed = rest.replace(/^\s+/, '')
      line += rest.slice(0, rest.length - trimmed.length).match(/\n/g)?.length ?? 0
      at += rest.length - trimmed.length
    }
  }
  return parts
}

/** Builds the tree: text, output actions, and if/else/end blocks (a frame per open if, with its open branch). */
function parse(parts) {
  const root = []
  const frames = [{ node: null, branch: root }]
  for (const part of parts) {
    const frame = frames[frames.length - 1]
    if (part.kind === 'text') {
      if (part.text) frame.branch.push(part)
      continue
    }
    const src = part.source
    const where = `${part.file}:${part.line}`
    if (src.startsWith('/*')) {
      if (!src.endsWith('*/')) throw new TemplateError(`${where}: unterminated comment`)
      continue
    }
    const keyword = /^(if|else|end|range|with|define|template|block|include|tpl|required|fail)\b/.exec(src)?.[1]
    if (keyword === 'if') {
      const node = { kind: 'if', condition: src.slice(2).trim(), where, whenTrue: [], otherwise: [] }
      frame.branch.push(node)
      frames.push({ node, branch: node.whenTrue })
    } else if (keyword === 'else') {
      if (!frame.node || src !== 'else' || frame.branch === frame.node.otherwise)
        throw new TemplateError(`${where}: "${src}" not supported here`)
      frame.branch = frame.node.otherwise
    } else if (keyword === 'end') {
      if (!frame.node) throw new TemplateError(`${where}: "end" without "if"`)
      frames.pop()
    } else if (keyword) {
      throw new TemplateError(`${where}: "${keyword}" is not supported by this renderer (see deploy/render.mjs)`)
    } else {
      frame.branch.push({ kind: 'output', pipeline: src, where })
    }
  }
  if (frames.length > 1) throw new TemplateError(`${frames[frames.length - 1].node.where}: "if" without "end"`)
  return root
}

/** Tokens of one command: strings, numbers, words; quoted strings keep their spaces. */
function tokens(command, where) {
  const out = []
  const re = /\s*("(?:[^"\\]|\\.)*"|[^\s"]+)/y
  let end = 0
  for (let m = re.exec(command); m !== null; m = re.exec(command)) {
    out.push(m[1])
    end = re.lastIndex
  }
  if (command.slice(end).trim()) throw new TemplateError(`${where}: cannot read "${command}"`)
  return out
}

function splitPipeline(pipeline) {
  const commands = []
  let current = ''
  let quoted = false
  for (let i = 0; i < pipeline.length; i++) {
    const c = pipeline[i]
    if (c === '"' && pipeline[i - 1] !== '\\') quoted = !quoted
    if (c === '|' && !quoted) {
      commands.push(current.trim())
      current = ''
    } else current += c
  }
  commands.push(current.trim())
  return commands
}

const FUNCTIONS = {
  quote: (v) => JSON.stringify(v === undefined || v === null ? '' : String(v)),
  toYaml: (v) => (v === undefined || v === null ? '' : YAML.stringify(v, { lineWidth: 0 }).replace(/\n$/, '')),
  indent: (n, s) => String(s).replace(/^/gm, ' '.repeat(n)),
  nindent: (n, s) => `\n${String(s).replace(/^/gm, ' '.repeat(n))}`,
  default: (fallback, v) => (isEmpty(v) ? fallback : v),
}

/** Go templates' truth: false, 0, nil and empty strings, lists and maps are false. */
function isEmpty(v) {
  if (v === undefined || v === null || v === false || v === 0 || v === '') return true
  if (Array.isArray(v)) return v.length === 0
  if (typeof v === 'object') return Object.keys(v).length === 0
  return false
}

function value(token, context, where) {
  if (token.startsWith('"')) return JSON.parse(token)
  if (/^-?\d+(\.\d+)?$/.test(token)) return Number(token)
  if (token === 'true' || token === 'false') return token === 'true'
  if (token.startsWith('.')) {
    let v = context
    for (const key of token.slice(1).split('.')) v = v === undefined || v === null ? undefined : v[key]
    return v
  }
  throw new TemplateError(`${where}: unknown value or function "${token}"`)
}

function evaluate(pipeline, context, where) {
  let piped
  let first = true
  for (const command of splitPipeline(pipeline)) {
    const [head, ...rest] = tokens(command, where)
    if (head === undefined) throw new TemplateError(`${where}: empty command in "${pipeline}"`)
    const fn = Object.hasOwn(FUNCTIONS, head) ? FUNCTIONS[head] : undefined
    if (!fn) {
      if (!first || rest.length > 0) throw new TemplateError(`${where}: "${head}" is not a function`)
      piped = value(head, context, where)
    } else {
      const args = rest.map((t) => value(t, context, where))
      if (!first) args.push(piped)
      if (args.length !== fn.length) throw new TemplateError(`${where}: ${head} takes ${fn.length} arguments`)
      piped = fn(...args)
    }
    first = false
  }
  return piped
}

function print(v, pipeline, where) {
  if (v === undefined || v === null) throw new TemplateError(`${where}: "${pipeline}" has no value`)
  if (typeof v === 'object') throw new TemplateError(`${where}: "${pipeline}" is a map or list: use toYaml`)
  return String(v)
}

function execute(nodes, context) {
  let out = ''
  for (const node of nodes) {
    if (node.kind === 'text') out += node.text
    else if (node.kind === 'output')
      out += print(evaluate(node.pipeline, context, node.where), node.pipeline, node.where)
    else if (node.kind === 'if')
      out += execute(isEmpty(evaluate(node.condition, context, node.where)) ? node.otherwise : node.whenTrue, context)
  }
  return out
}

/** Renders one template text; `file` names it in errors. */
export function renderTemplate(text, context, file = 'template') {
  return execute(parse(lex(text, file)), context)
}

// --- values ---

function isMap(v) {
  return v !== null && typeof v === 'object' && !Array.isArray(v)
}

/** Helm's merge of values: maps merge key by key, anything else (lists too) replaces; null deletes a key. */
export function mergeValues(base, override) {
  const out = { ...base }
  for (const [key, v] of Object.entries(override ?? {})) {
    if (v === null) delete out[key]
    else out[key] = isMap(v) && isMap(base[key]) ? mergeValues(base[key], v) : v
  }
  return out
}

/** The values a release gets, checked against values.schema.json (the error lists every problem). */
export function resolveValues(overrides = [], dir = chartDir) {
  let values = YAML.parse(readFileSync(join(dir, 'values.yaml'), 'utf8'))
  for (const o of overrides) values = mergeValues(values, o)
  const schema = JSON.parse(readFileSync(join(dir, 'values.schema.json'), 'utf8'))
  const validate = new Ajv({ allErrors: true, strict: true }).compile(schema)
  if (!validate(values)) {
    const problems = validate.errors.map((e) => `${e.instancePath || '/'} ${e.message}${paramsOf(e)}`)
    throw new TemplateError(`values do not match ${join(dir, 'values.schema.json')}:\n  ${problems.join('\n  ')}`)
  }
  return values
}

function paramsOf(e) {
  if (e.params?.additionalProperty) return `: ${e.params.additionalProperty}`
  if (e.params?.allowedValues) return `: ${e.params.allowedValues.join(', ')}`
  return ''
}

// --- the chart ---

/**
 * Renders the chart: CRDs first (crds/, not templated, as `helm template --include-crds`), then templates/*.yaml
 * in name order (files starting with _ are helpers and render nothing). Returns the manifest text and the objects.
 */
export function renderChart({
  values: overrides = [],
  name = 'kmesh-ts',
  namespace = 'kmesh-system',
  dir = chartDir,
} = {}) {
  const chart = YAML.parse(readFileSync(join(dir, 'Chart.yaml'), 'utf8'))
  const values = resolveValues(overrides, dir)
  const context = {
    Values: values,
    Release: { Name: name, Namespace: namespace, Service: 'Helm' },
    Chart: { Name: chart.name, Version: chart.version, AppVersion: chart.appVersion },
  }
  const sources = []
  for (const f of listYaml(join(dir, 'crds')))
    sources.push([`${chart.name}/crds/${f}`, readFileSync(join(dir, 'crds', f), 'utf8')])
  for (const f of listYaml(join(dir, 'templates')).filter((f) => !f.startsWith('_'))) {
    const file = join(dir, 'templates', f)
    sources.push([`${chart.name}/templates/${f}`, renderTemplate(readFileSync(file, 'utf8'), context, file)])
  }
  const documents = []
  let manifest = ''
  for (const [source, text] of sources) {
    for (const doc of text.split(/^---\s*$/m)) {
      const parsed = YAML.parse(doc)
      if (parsed === null || parsed === undefined) continue
      documents.push({ source, object: parsed })
      manifest += `---\n# Source: ${source}\n${doc.replace(/^\s*\n/, '').replace(/\s*$/, '\n')}`
    }
  }
  return { manifest, documents }
}

function listYaml(dir) {
  try {
    return readdirSync(dir)
      .filter((f) => f.endsWith('.yaml'))
      .sort()
  } catch (err) {
    if (err.code === 'ENOENT') return []
    throw err
  }
}

// --- command line ---

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const args = process.argv.slice(2)
  const options = { values: [] }
  let out
  for (let i = 0; i < args.length; i++) {
    const flag = args[i]
    const next = () => {
      const v = args[++i]
      if (v === undefined) throw new Error(`${flag} needs a value`)
      return v
    }
    if (flag === '--values' || flag === '-f') options.values.push(YAML.parse(readFileSync(next(), 'utf8')) ?? {})
    else if (flag === '--name') options.name = next()
    else if (flag === '--namespace' || flag === '-n') options.namespace = next()
    else if (flag === '--out') out = next()
    else {
      console.error(`${basename(process.argv[1])}: unknown argument ${flag}`)
      process.exit(2)
    }
  }
  try {
    const { manifest } = renderChart(options)
    if (out) writeFileSync(out, manifest)
    else process.stdout.write(manifest)
  } catch (err) {
    console.error(err instanceof TemplateError ? err.message : err)
    process.exit(1)
  }
}
