/** The IPsec controller's tc attach/detach: one `tc -batch` per call, inside a namespace created here. */
import t from 'tap'
import { execFileSync } from 'node:child_process'
import { join } from 'node:path'
import { Collection } from '@kmesh-ts/bpf-maps'
import { objectPath, programs } from '@kmesh-ts/bpf-progs'
import { privilegedSkip, tempNetns, tempPinDir } from '@kmesh-ts/testkit'
import { attachIngress, detachIngress, TcError } from '../src/ipsec/index.js'

t.test(
  'attach two devices in one process, detach them, detach again',
  {
    skip: privilegedSkip(
      'tc clsact with a direct-action BPF_PROG_TYPE_SCHED_CLS filter (kernel >= 4.5) in a network namespace, and bpffs',
    ),
  },
  async (t) => {
    const pins = tempPinDir()
    t.teardown(() => pins.close())
    const ns = tempNetns()
    t.teardown(() => ns.close())
    const coll = Collection.load({ objectPath: objectPath('tc_mark'), pinMaps: false })
    t.teardown(() => coll.close())
    const enc = join(pins.path, 'enc')
    const dec = join(pins.path, 'dec')
    coll.program(programs.tcMarkEncrypt.name).pin(enc)
    coll.program(programs.tcMarkDecrypt.name).pin(dec)
    ns.exec(['ip', 'link', 'add', 'vpa', 'type', 'veth', 'peer', 'name', 'nA'])
    const netns = `/run/netns/${ns.name}`
    const list = [
      { dev: 'vpa', pin: enc },
      { dev: 'nA', pin: dec },
    ]
    const show = (dev: string) => ns.exec(['tc', 'filter', 'show', 'dev', dev, 'ingress'])

    attachIngress(netns, list)
    t.match(show('vpa'), /pref 49152 bpf chain 0 handle 0xe0 \S+ direct-action .*name tc_mark_encrypt/)
    t.match(show('nA'), /pref 49152 bpf chain 0 handle 0xe0 \S+ direct-action .*name tc_mark_decrypt/)
    attachIngress(netns, list)
    t.equal(
      show('vpa').match(/handle 0xe0/g)?.length,
      1,
      'attaching again replaces our filter (and the clsact qdisc stays)',
    )

    ns.exec(['tc', 'filter', 'add', 'dev', 'vpa', 'ingress', 'prio', '1', 'bpf', 'object-pinned', dec, 'da'])
    detachIngress(netns, list)
    t.notMatch(show('nA'), /tc_mark/, 'ours gone from nA')
    t.match(show('vpa'), /pref 1 bpf/, 'a filter at another priority is left alone')
    t.notMatch(show('vpa'), /pref 49152/)
    detachIngress(netns, list)
    t.pass('detaching filters that are gone is not an error')
    execFileSync('nsenter', [`--net=${netns}`, 'ip', 'link', 'del', 'vpa'])
    detachIngress(netns, list)
    t.pass('nor is a vanished device')

    const e = (() => {
      try {
        attachIngress(netns, [{ dev: 'nosuchdev', pin: enc }])
      } catch (err) {
        return err
      }
      return undefined
    })()
    t.type(e, TcError)
    t.match(
      (e as TcError).message,
      /nsenter --net=\/run\/netns\/\S+ tc -batch - .*failed: .*Cannot find device "nosuchdev"/s,
    )
  },
)
