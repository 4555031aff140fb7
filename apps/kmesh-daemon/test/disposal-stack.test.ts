// The daemon's disposal stack: last started, first released; a failing release does not stop the others.
import t from 'tap'
import { DisposalStack } from '../src/util/disposal-stack.js'

t.test('releases in reverse order, each once, through failures', async (t) => {
  const order: string[] = []
  const errors: string[] = []
  const stack = new DisposalStack()
  stack.defer(() => order.push('lock'))
  stack.defer(async () => {
    order.push('admin')
    throw new Error('port stuck')
  })
  stack.defer(async () => {
    await new Promise((r) => setTimeout(r, 5))
    order.push('dataplane')
  })
  await stack.disposeAll((e) => errors.push((e as Error).message))
  t.same(order, ['dataplane', 'admin', 'lock'])
  t.same(errors, ['port stuck'])
  await stack.disposeAll(() => t.fail('nothing left to release'))
  t.same(order, ['dataplane', 'admin', 'lock'], 'a second dispose releases nothing again')
})
