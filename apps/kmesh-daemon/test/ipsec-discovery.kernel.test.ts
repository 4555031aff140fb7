/**
 * tc device discovery on a real kernel, inside namespaces created here (never this machine's own interfaces): the
 * controller finds the node NICs (the device of the node's address, the device of the default route) and the host
 * end of a pod's veth from the pod's namespace, attaches our programs there, detaches a pod that leaves, and removes
 * everything on close. ESP states cannot be made on this host's kernel; no remote node is configured, so none is tried.
 */
import t from 'tap'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pino } from 'pino'
import { privilegedSkip, tempNetns, tempPinDir } from '@kmesh-ts/testkit'
import { discoverNodeNics, discoverPodVeths, IpsecController } from '../src/ipsec/index.js'

const NEEDS =
  'network namespaces with veth links, NETLINK_XFRM (xfrm_user), tc clsact with BPF_PROG_TYPE_SCHED_CLS, bpffs'

t.test('node NICs and pod veths are discovered and get our tc programs', { skip: privilegedSkip(NEEDS) }, async (t) => {
  const node = tempNetns()
  t.teardown(() => node.close())
  const pod = tempNetns()
  t.teardown(() => pod.close())
  const netns = `/run/netns/${node.name}`
  const podNetns = `/run/netns/${pod.name}`
  for (const cmd of [
    // veth pairs stand in for NICs (this host has no dummy driver); their far ends stay in the node namespace.
    ['ip', 'link', 'add', 'nic0', 'type', 'veth', 'peer', 'name', 'nic0far'],
    ['ip', 'link', 'set', 'nic0far', 'up'],
    ['ip', 'addr', 'add', '192.168.55.1/24', 'dev', 'nic0'],
    ['ip', 'link', 'set', 'nic0', 'up'],
    ['ip', 'link', 'add', 'uplink', 'type', 'veth', 'peer', 'name', 'uplinkfar'],
    ['ip', 'link', 'set', 'uplinkfar', 'up'],
    ['ip', 'addr', 'add', '10.9.9.1/24', 'dev', 'uplink'],
    ['ip', 'link', 'set', 'uplink', 'up'],
    ['ip', 'route', 'add', 'default', 'via', '10.9.9.254', 'dev', 'uplink'],
    ['ip', 'link', 'add', 'vpod', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', pod.name],
    ['ip', 'link', 'add', 'vother', 'type', 'veth', 'peer', 'name', 'vother1'],
  ])
    node.exec(cmd)

  t.same(discoverNodeNics(netns, ['192.168.55.1']), {
    byAddress: ['nic0'],
    byDefaultRoute: ['uplink'],
    all: ['nic0', 'uplink'],
  })
  t.same(discoverPodVeths(netns, podNetns), ['vpod'], "the pod's veth, not the other one")

  const pins = tempPinDir()
  t.teardown(() => pins.close())
  const dir = mkdtempSync(join(tmpdir(), 'kmesh-ipsec-disc-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const keyFile = join(dir, 'key.json')
  writeFileSync(
    keyFile,
    JSON.stringify({
      spi: 1,
      aeadKeyName: 'rfc4106(gcm(aes))',
      aeadKey: Buffer.alloc(36, 3).toString('base64'),
      length: 128,
    }),
    { mode: 0o600 },
  )
  const c = IpsecController.start({
    keyFile,
    nodeInfoDir: join(dir, 'nodeinfo'),
    netns,
    pinRoot: pins.path,
    discoverNics: true,
    resyncMs: 0,
    node: { name: 'node-a', addresses: ['192.168.55.1'], podCIDRs: ['10.244.1.0/24'], bootID: 'a'.repeat(36) },
    log: pino({ level: 'silent' }),
  })
  let closed = false
  t.teardown(() => (closed ? undefined : c.close()))
  const show = (dev: string) => node.exec(['tc', 'filter', 'show', 'dev', dev, 'ingress'])
  t.match(show('nic0'), /tc_mark_decrypt/, 'tc_mark_decrypt on the NIC of the node address')
  t.match(show('uplink'), /tc_mark_decrypt/, 'and on the NIC of the default route')
  t.same(c.attachPod(podNetns), ['vpod'])
  t.match(show('vpod'), /tc_mark_encrypt/, "tc_mark_encrypt on the pod's veth")
  t.notMatch(show('vother'), /tc_mark/, 'nothing on a veth of no enrolled pod')
  c.detachPod(podNetns)
  t.notMatch(show('vpod'), /tc_mark/, 'the pod left: its filter is gone')
  t.match(show('nic0'), /tc_mark_decrypt/, 'the NICs keep theirs')
  c.attachPod(podNetns)
  await c.close()
  closed = true
  for (const dev of ['nic0', 'uplink', 'vpod']) t.notMatch(show(dev), /tc_mark/, `${dev}: nothing left after close`)
})
