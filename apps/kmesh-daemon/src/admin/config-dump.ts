/**
 * The config dump's lists (workloads, services, policies, ids), paginated: a 100k-workload mesh must not answer a
 * plain GET with a gigabyte of JSON. Each list says its total, the page given and how to ask for the next one.
 */

/** Items per list unless `?limit=` says otherwise; `MAX_LIMIT` at most. */
export const DEFAULT_LIMIT = 1000
export const MAX_LIMIT = 100_000

/** A list the dump pages through without copying it whole. */
export interface DumpList {
  total(): number
  page(offset: number, limit: number): unknown[]
}

/** A list over `items()` (read again for each page), each item shown through `view`; `size` counts without a walk. */
export function listOf<T>(items: () => Iterable<T>, view: (x: T) => unknown = (x) => x, size?: () => number): DumpList {
  return {
    total: () => {
      if (size) return size()
      let n = 0
      for (const _ of items()) n++
      return n
    },
    page: (offset, limit) => {
      const out: unknown[] = []
      let i = 0
      for (const x of items()) {
        if (i++ < offset) continue
        if (out.length >= limit) break
        out.push(view(x))
      }
      return out
    },
  }
}

export interface Page {
  total: number
  offset: number
  limit: number
  items: unknown[]
  /** Present when more items follow: the query that returns them. */
  next?: string
}

export class QueryError extends Error {}

export function pageQuery(q: URLSearchParams): { offset: number; limit: number; only: string[] | undefined } {
  const int = (name: string, dflt: number, max: number): number => {
    const v = q.get(name)
    if (v === null) return dflt
    const n = Number(v)
    if (!Number.isInteger(n) || n < 0 || n > max) throw new QueryError(`?${name}=${v}: expected an integer 0..${max}`)
    return n
  }
  const only = q.get('only')
  return {
    offset: int('offset', 0, Number.MAX_SAFE_INTEGER),
    limit: int('limit', DEFAULT_LIMIT, MAX_LIMIT),
    only: only ? only.split(',') : undefined,
  }
}

export function pageOf(name: string, list: DumpList, offset: number, limit: number): Page {
  const total = list.total()
  const items = list.page(offset, limit)
  const page: Page = { total, offset, limit, items }
  if (offset + items.length < total) page.next = `?only=${name}&offset=${offset + items.length}&limit=${limit}`
  return page
}

/**
 * The dump: the summary sections, then each list paginated (or only those named by `?only=`; `?only=summary` for
 * the summary alone).
 */
export function configDump(
  summary: Record<string, unknown>,
  lists: Record<string, DumpList>,
  q: URLSearchParams,
): Record<string, unknown> {
  const { offset, limit, only } = pageQuery(q)
  for (const name of only ?? [])
    if (name !== 'summary' && !(name in lists))
      throw new QueryError(`?only=${name}: expected summary or one of ${Object.keys(lists).join(', ')}`)
  const out: Record<string, unknown> = !only || only.includes('summary') ? { ...summary } : {}
  let truncated = false
  for (const [name, list] of Object.entries(lists)) {
    if (only && !only.includes(name)) continue
    const page = pageOf(name, list, offset, limit)
    if (page.next) truncated = true
    out[name] = page
  }
  if (truncated)
    out.note = `lists hold at most ${limit} items from offset ${offset}; each list's "next" asks for the rest (?only=NAME&offset=&limit=, limit at most ${MAX_LIMIT})`
  return out
}
