/** The pure core of the IPsec controller: desired rules across remotes and rotation, step order, node-info files. */
import t from 'tap'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { IpsecKey, KeyHistory, type NodeInfo } from '@kmesh-ts/ipsec/pure'
import {
  desiredRules,
  parseNodeInfo,
  planSteps,
  readNodeInfoDir,
  writeNodeInfo,
  type RuleSet,
} from '../src/ipsec/index.js'

const key = (spi: number, byte: number) => new IpsecKey(spi, 'rfc4106(gcm(aes))', Buffer.alloc(36, byte), 128)
const node = (name: string, spi: number, addr: string, cidr: string, boot: string): NodeInfo => ({
  name,
  spi,
  addresses: [addr],
  bootID: boot.repeat(36).slice(0, 36),
  podCIDRs: [cidr],
})
const empty = (): RuleSet => ({ states: new Map(), policies: new Map(), cidrs: new Set() })

t.test('desired rules for one remote, and across a rotation', async (t) => {
  const keys = new KeyHistory()
  keys.add(key(1, 1))
  const a = node('node-a', 1, '192.168.0.1', '10.244.1.0/24', 'a')
  const b = node('node-b', 1, '192.168.0.2', '10.244.2.0/24', 'b')
  const d = desiredRules(a, [a, b], keys)
  t.same(
    [...d.states.keys()].sort(),
    ['192.168.0.1 1 50', '192.168.0.2 1 50'],
    'IN (dst = us) and OUT (dst = them) with SPI 1',
  )
  t.same(
    [...d.policies.keys()].sort(),
    [
      'fwd 0.0.0.0/0 10.244.1.0/24 208/4294967295',
      'fwd 10.244.2.0/24 10.244.1.0/24 0/4294967295',
      'in 0.0.0.0/0 10.244.1.0/24 208/4294967295',
      'in 10.244.2.0/24 10.244.1.0/24 0/4294967295',
      'out 0.0.0.0/0 10.244.2.0/24 224/4294967295',
    ],
    'Kmesh’s IN/FWD (0xd0) and OUT (0xe0), and ours for unmarked plaintext from B’s pods (mark 0)',
  )
  const parity = desiredRules(a, [b], keys, { rejectPlaintext: false })
  t.same(
    [...parity.policies.keys()].sort(),
    [
      'fwd 0.0.0.0/0 10.244.1.0/24 208/4294967295',
      'in 0.0.0.0/0 10.244.1.0/24 208/4294967295',
      'out 0.0.0.0/0 10.244.2.0/24 224/4294967295',
    ],
    'rejectPlaintext: false = Kmesh’s rules only',
  )
  const c = node('node-c', 1, '192.168.0.3', '10.244.3.0/24', 'c')
  t.same(
    [...desiredRules(a, [b, c], keys).policies.values()]
      .filter((p) => p.mark!.value === 0)
      .map((p) => `${p.dir} ${p.selector.src} via ${p.templates[0]!.src}`),
    [
      'in 10.244.2.0/24 via 192.168.0.2',
      'fwd 10.244.2.0/24 via 192.168.0.2',
      'in 10.244.3.0/24 via 192.168.0.3',
      'fwd 10.244.3.0/24 via 192.168.0.3',
    ],
    'one pair per remote, each bound to that remote’s tunnel (Kmesh’s 0xd0 policies share one key; ours do not)',
  )
  t.same([...d.cidrs], ['10.244.2.0/24'])

  keys.add(key(2, 2))
  const rotated = desiredRules({ ...a, spi: 2 }, [b], keys)
  t.same(
    [...rotated.states.values()].map((s) => `${s.src}->${s.dst} spi ${s.spi}`).sort(),
    ['192.168.0.1->192.168.0.2 spi 1', '192.168.0.2->192.168.0.1 spi 1', '192.168.0.2->192.168.0.1 spi 2'],
    "we moved to SPI 2; B still publishes 1: our SPI 1 ingress stays and we still send with B's SPI 1",
  )
  const moved = desiredRules({ ...a, spi: 2 }, [{ ...b, spi: 2 }], keys)
  t.same(
    [...moved.states.values()].map((s) => `${s.dst} ${s.spi}`).sort(),
    ['192.168.0.1 2', '192.168.0.2 2'],
    'once B moves, SPI 1 is gone',
  )

  const steps = planSteps({ states: d.states, policies: d.policies, cidrs: d.cidrs }, moved)
  const ops = steps.map((s) => s.op)
  t.ok(
    ops.lastIndexOf('delete-state') < ops.indexOf('add-state') &&
      ops.indexOf('add-state') < ops.indexOf('update-policy'),
    `deletes, then states, then policies: ${ops.join(',')}`,
  )
  t.same(planSteps(moved, moved), [], 'nothing to do when installed = desired')
  const teardown = planSteps(moved, empty()).map((s) => s.op)
  t.same(
    teardown,
    ['delete-cidr', ...Array(5).fill('delete-policy'), 'delete-state', 'delete-state'],
    'teardown: stop marking first, then policies (ours included), then states',
  )
  const switchedOff = planSteps(
    moved,
    desiredRules({ ...a, spi: 2 }, [{ ...b, spi: 2 }], keys, { rejectPlaintext: false }),
  )
  t.same(
    switchedOff.map((s) => `${s.op} ${'key' in s ? s.key : ''}`).sort(),
    [
      'delete-policy fwd 10.244.2.0/24 10.244.1.0/24 0/4294967295',
      'delete-policy in 10.244.2.0/24 10.244.1.0/24 0/4294967295',
    ],
    'turning the extension off removes exactly its two policies',
  )

  const rebooted = desiredRules({ ...a, spi: 2 }, [{ ...b, spi: 2, bootID: 'c'.repeat(36) }], keys)
  t.same(
    planSteps(moved, rebooted).map((s) => s.op),
    ['delete-state', 'delete-state', 'add-state', 'add-state'],
    "a remote's new boot id re-derives both states (delete + add: an SA update keeps its key)",
  )
  t.match(
    [...desiredRules(a, [{ ...b, bootID: 'short' }], keys).errors.values()][0],
    /boot/,
    'a bad remote is reported, not thrown',
  )
})

t.test('node-info files', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'kmesh-nodeinfo-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const a = node('node-a', 3, '192.168.0.1', '10.244.1.0/24', 'a')
  const file = writeNodeInfo(dir, a)
  t.same(JSON.parse(readFileSync(file, 'utf8')), {
    apiVersion: 'kmesh.net/v1alpha1',
    kind: 'KmeshNodeInfo',
    metadata: { name: 'node-a' },
    spec: { spi: 3, addresses: ['192.168.0.1'], bootID: a.bootID, podCIDRS: ['10.244.1.0/24'] },
  })
  writeFileSync(join(dir, 'broken.json'), '{"metadata":{"name":"x"},"spec":{"spi":0}}')
  const errors: string[] = []
  const nodes = readNodeInfoDir(dir, (e) => errors.push(e.message))
  t.same([...nodes.keys()], ['node-a'])
  t.match(errors, [/broken\.json \(spec\.spi\): must be an integer from 1/])
  t.throws(
    () => parseNodeInfo('{"kind":"Pod","metadata":{"name":"x"},"spec":{}}', 'f.json'),
    /node info f\.json \(kind\): must be KmeshNodeInfo/,
  )
  t.throws(() => parseNodeInfo('nope', 'f.json'), /not JSON/)
})
