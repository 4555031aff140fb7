// Runs the README's first code block against src/, so the example stays true.
import t from 'tap'
import { runReadmeExample } from '@kmesh-ts/testkit'

t.test('README example runs and prints ok', (t) =>
  runReadmeExample(t, new URL('..', import.meta.url), '@kmesh-ts/bpf-maps'),
)
