/**
 * The live page in a real browser: Debian's headless Chromium driven by puppeteer-core. The page shows a service →
 * the kernel's outcomes (endpoints by priority, each backend's share) → the backends with live connection counters;
 * a mesh change shows up in the DOM (a second backend: two rows at 50%); a refused file shows in the refusals; the
 * explain box answers. A screenshot is saved as a test artefact (.cache/test-artifacts/ui-live-page.png, or
 * $KMESH_TEST_ARTIFACTS). Addresses (helper tag "adm"): VIP 127.10.43.2, backends 127.0.43.21 and 127.0.43.22.
 */
import t from 'tap'
import { existsSync, mkdirSync, statSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import puppeteer, { type Browser, type Page } from 'puppeteer-core'
import { privilegedSkip } from '@kmesh-ts/testkit'
import { meshHarness, meshYaml, type WorkloadSpec } from './support/mesh-harness.js'
import { exchangeFrom, exchangeServer } from './support/tcp-exchange.js'

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'
const skip =
  privilegedSkip('cgroup connect4 and sockops attached by BPF links, a BPF ring buffer, cgroup v2 and bpffs') ||
  (existsSync(CHROMIUM) ? false : `no Chromium at ${CHROMIUM} (scripts/setup.sh installs Debian's chromium)`)

const ARTIFACTS =
  process.env.KMESH_TEST_ARTIFACTS ??
  resolve(fileURLToPath(new URL('.', import.meta.url)), '../../../.cache/test-artifacts')
const SERVICE = 't/adm-ui.t.svc.cluster.local'

function mesh(backends: string[]): string {
  const workloads: WorkloadSpec[] = backends.map((name, i) => ({
    name,
    ip: `127.0.43.${21 + i}`,
    services: { 'adm-ui': { 80: 18044 } },
  }))
  return meshYaml(workloads, [{ name: 'adm-ui', vips: ['127.10.43.2'], ports: { 80: 18044 } }])
}

/** The outcome rows of the service's first port as the page shows them. */
function rows(page: Page) {
  return page.$$eval(`.service[data-key="${SERVICE}"] .path .outcome`, (trs) =>
    trs.map((tr) => ({
      address: tr.getAttribute('data-address'),
      backend: tr.querySelector('.backend')?.textContent,
      share: tr.querySelector('.prob')?.textContent?.trim(),
      conns: tr.querySelector('.conns')?.textContent,
    })),
  )
}

async function until<T>(what: string, fn: () => Promise<T | undefined | false>, ms = 10_000): Promise<T> {
  const end = Date.now() + ms
  let last: unknown
  for (;;) {
    try {
      const v = await fn()
      if (v) return v
    } catch (err) {
      last = err
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${last ? `: ${last}` : ''}`)
    await new Promise((r) => setTimeout(r, 100))
  }
}

t.test('the live page follows the mesh in headless Chromium', { skip }, async (t) => {
  const h = await meshHarness(t)
  const servers = await Promise.all([
    exchangeServer('127.0.43.21', 18044, 1000),
    exchangeServer('127.0.43.22', 18044, 1000),
  ])
  t.teardown(() => Promise.all(servers.map((s) => s.close())))
  h.writeMesh(mesh(['ui-a']))
  const daemon = await h.start({ adminAddress: '127.0.0.1:0' })

  const browser: Browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    // root in a container: Chromium's sandbox needs user namespaces it may not have.
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
  })
  t.teardown(() => browser.close())
  const page = await browser.newPage()
  await page.setViewport({ width: 1100, height: 800 })
  const requests: string[] = []
  page.on('request', (r) => requests.push(r.url()))
  await page.goto(`${daemon.admin!.url}/ui`, { waitUntil: 'load' })

  const one = await until('the service with one backend', async () => {
    const r = await rows(page)
    return r.length === 1 ? r : undefined
  })
  t.match(one, [{ address: '127.0.43.21:18044', backend: 't/ui-a', share: /100\.00%$/ }], 'one backend, all of it')
  t.match(await page.$eval('#status', (e) => e.textContent), /^ready/)

  // A connection through the VIP appears in the backend's live counters.
  const c = await exchangeFrom({ cgroupPath: h.cgroup }, '127.10.43.2', 80, 500)
  t.equal(c.received, 1000)
  const counted = await until('the connection in the counters', async () => {
    const [r] = await rows(page)
    return r?.conns?.startsWith('0 open, 1 opened') ? r : undefined
  })
  t.match(counted.conns, /0 open, 1 opened, 500 B sent, 1000 B received/, 'live connection and byte counters')
  t.match(
    await page.$eval(`.service[data-key="${SERVICE}"] .service-conns`, (e) => e.textContent),
    /service: 0 open, 1 opened, 500 B sent, 1000 B received/,
  )

  // A mesh change: a second backend, each at 50%.
  h.writeMesh(mesh(['ui-a', 'ui-b']))
  await daemon.reload()
  const two = await until('two backends after the mesh change', async () => {
    const r = await rows(page)
    return r.length === 2 ? r : undefined
  })
  t.match(
    two.map((r) => [r.address, r.backend, r.share]).sort(),
    [
      ['127.0.43.21:18044', 't/ui-a', /50\.00%$/],
      ['127.0.43.22:18044', 't/ui-b', /50\.00%$/],
    ],
    'the DOM shows the new endpoint and the shares the kernel gives',
  )

  // The explain box.
  await page.type('#explain-input', '127.10.43.2:80')
  await page.click('#explain-form button')
  const explained = await until('the explanation', async () => {
    const text = await page.$eval('#explain-out', (e) => (e.getAttribute('data-target') ? e.textContent : ''))
    return text || undefined
  })
  t.match(explained, /127\.10\.43\.2:80 → service t\/adm-ui\.t\.svc\.cluster\.local/)
  t.match(explained, /50\.0000%.*127\.0\.43\.2[12]:18044/)

  // A refused file: the last good state stays on the page, the refusal is listed.
  h.writeMesh('services: 3\n')
  await daemon.reload()
  const refusal = await until('the refusal', () =>
    page.$eval('#refusals', (e) => e.querySelector('[data-kind="mesh file"]')?.textContent ?? undefined),
  )
  t.match(refusal, /mesh file/)
  t.equal((await rows(page)).length, 2, 'the last good state is still shown')

  mkdirSync(ARTIFACTS, { recursive: true })
  const shot = join(ARTIFACTS, 'ui-live-page.png')
  await page.screenshot({ path: shot, fullPage: true })
  t.ok(statSync(shot).size > 10_000, `screenshot saved: ${shot}`)
  t.same(
    requests.filter((u) => !u.startsWith(daemon.admin!.url)),
    [],
    'no request leaves the admin address (no external assets)',
  )
})
