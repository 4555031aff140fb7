/** The km_nodeinfo LPM record in a real LPM trie (BPF_MAP_TYPE_LPM_TRIE): longest-prefix lookups for /32 and /128. */
import t from 'tap'
import { privilegedSkip } from '@kmesh-ts/testkit'
import { lpmKey, lpmKeyOfCidr, nodeInfoMapSpec, u32Value } from '../src/codecs/index.js'
import { BpfMap } from '../src/native/index.js'

t.test(
  'a real LPM trie answers the longest prefix for /32 and /128 lookups',
  { skip: privilegedSkip('BPF_MAP_TYPE_LPM_TRIE (kernel >= 4.11)') },
  async (t) => {
    const map = BpfMap.create({
      name: nodeInfoMapSpec.name,
      type: nodeInfoMapSpec.type,
      keySize: lpmKey.size,
      valueSize: 4,
      maxEntries: 64,
      flags: nodeInfoMapSpec.flags,
    })
    t.teardown(() => map.close())
    const m = map.typed(lpmKey, u32Value)
    m.put(lpmKeyOfCidr('10.244.0.0/16'), 1)
    m.put(lpmKeyOfCidr('10.244.2.0/24'), 2)
    m.put(lpmKeyOfCidr('fd00:2::/64'), 3)
    t.equal(m.get({ prefixLen: 32, address: '10.244.2.9' }), 2, 'the /24 wins over the /16')
    t.equal(m.get({ prefixLen: 32, address: '10.244.7.1' }), 1)
    t.equal(m.get({ prefixLen: 32, address: '10.245.0.1' }), undefined)
    t.equal(m.get({ prefixLen: 128, address: 'fd00:2::abcd' }), 3)
    t.equal(m.get({ prefixLen: 128, address: 'fd00:3::1' }), undefined)
    t.ok(m.delete(lpmKeyOfCidr('10.244.2.0/24')))
    t.equal(m.get({ prefixLen: 32, address: '10.244.2.9' }), 1)
  },
)
