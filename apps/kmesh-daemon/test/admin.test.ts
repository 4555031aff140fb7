import t from 'tap'
import { startAdmin } from '../src/admin.js'

t.test('readiness and config dump', async (t) => {
  let ready = false
  const admin = await startAdmin('127.0.0.1:0', { ready: () => ready, dump: () => ({ mode: 'local', ready }) })
  t.teardown(() => new Promise((r) => admin.close(r)))
  t.equal((await fetch(`${admin.url}/healthz/ready`)).status, 503)
  ready = true
  const res = await fetch(`${admin.url}/healthz/ready`)
  t.equal(res.status, 200)
  t.equal(await res.text(), 'ready\n')
  t.same(await (await fetch(`${admin.url}/debug/config_dump`)).json(), { mode: 'local', ready: true })
  t.equal((await fetch(`${admin.url}/nope`)).status, 404)
  await t.rejects(
    startAdmin('nonsense', { ready: () => true, dump: () => ({}) }),
    /--admin-address nonsense: expected HOST:PORT/,
  )
})
