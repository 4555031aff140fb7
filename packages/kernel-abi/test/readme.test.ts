// Runs the README's first code block against src/, so the example stays true.
import t from 'tap'
import { readFileSync, writeFileSync } from 'node:fs'
import { fileURLToPath, pathToFileURL } from 'node:url'

const readme = readFileSync(fileURLToPath(new URL('../README.md', import.meta.url)), 'utf8')
const block = /```js\n([\s\S]*?)```/.exec(readme)?.[1]

t.test('README example runs and prints ok', async (t) => {
  t.ok(block, 'README has a js block')
  t.ok(readme.indexOf('```js') < readme.indexOf('## '), 'the example opens the README')
  const src = pathToFileURL(fileURLToPath(new URL('../src/index.ts', import.meta.url))).href
  const code = (block as string).replace(`from '@kmesh-ts/kernel-abi'`, `from '${src}'`)
  t.not(code, block, 'package import rewritten to src/')
  const dir = t.testdir({})
  const file = `${dir}/example.mjs`
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
})
