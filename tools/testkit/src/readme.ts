/**
 * A package's README opens with a `js` example that prints `ok`: this runs it against the package's src/ (the
 * imports of the package and its subpaths rewritten to src/), so the example can never drift from the code.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { fileURLToPath, pathToFileURL } from 'node:url'

interface Tap {
  ok(value: unknown, message?: string): void
  not(found: unknown, notWanted: unknown, message?: string): void
  same(found: unknown, wanted: unknown, message?: string): void
  testdir(fixture: object): string
}

/** `packageRoot`: the package directory as a file URL (e.g. `new URL('..', import.meta.url)` from test/). */
export async function runReadmeExample(t: Tap, packageRoot: URL, packageName: string): Promise<void> {
  const readme = readFileSync(fileURLToPath(new URL('README.md', packageRoot)), 'utf8')
  const block = /```js\n([\s\S]*?)```/.exec(readme)?.[1]
  t.ok(block, 'README has a js block')
  t.ok(readme.indexOf('```js') < readme.indexOf('## '), 'the example opens the README')
  // The package and its subpaths ('pkg/testing', in imports and import.meta.resolve) run from src/: the example
  // needs no build and no install. A subpath is src/<sub>/index.ts or src/<sub>.ts.
  const srcOf = (sub: string): string => {
    const candidates = sub ? [`src/${sub}/index.ts`, `src/${sub}.ts`] : ['src/index.ts']
    const files = candidates.map((c) => fileURLToPath(new URL(c, packageRoot)))
    return pathToFileURL(files.find((f) => existsSync(f)) ?? (files[0] as string)).href
  }
  const code = (block ?? '').replace(
    new RegExp(`'${packageName}(?:/([\\w./-]+))?'`, 'g'),
    (_m, sub: string | undefined) => `'${srcOf(sub ?? '')}'`,
  )
  t.not(code, block, 'package import rewritten to src/')
  const file = `${t.testdir({})}/example.mjs`
  writeFileSync(file, code)
  const logged: unknown[] = []
  const log = console.log
  console.log = (...args: unknown[]) => void logged.push(args.join(' '))
  try {
    await import(pathToFileURL(file).href)
  } finally {
    console.log = log
  }
  t.same(logged, ['ok'])
}
