/**
 * The netns finder (src/node/netns-finder.ts) over a /proc tree built in a temporary directory: fib_trie and
 * if_inet6 parsing, one read per namespace, the host's namespace and loopback never matched, a fresh scan for a pod
 * that was not there a moment ago.
 */
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { ipv6FromIfInet6, localIPv4FromFibTrie, procNetnsFinder } from '../src/node/netns-finder.js'

const fibTrie = (addresses: string[]) =>
  [
    'Main:',
    '  +-- 0.0.0.0/0 3 0 5',
    ...addresses.flatMap((a) => [`     |-- ${a}`, '        /32 host LOCAL']),
    '     |-- 10.0.0.0',
    '        /24 link UNICAST',
    '     +-- 127.0.0.0/8 2 0 2',
    '        |-- 127.0.0.1',
    '           /32 host LOCAL',
    '        |-- 127.255.255.255',
    '           /32 link BROADCAST',
    'Local:',
    '  +-- 0.0.0.0/0 3 0 5',
    ...addresses.flatMap((a) => [`     |-- ${a}`, '        /32 host LOCAL']),
  ].join('\n')

t.test('fib_trie and if_inet6', async (t) => {
  t.same(localIPv4FromFibTrie(fibTrie(['10.0.0.5', '192.168.7.1'])).sort(), ['10.0.0.5', '127.0.0.1', '192.168.7.1'])
  t.same(
    localIPv4FromFibTrie('Main:\n  +-- 0.0.0.0/0 1 0 0\n     |-- 10.0.0.0\n        /24 link UNICAST\n'),
    [],
    'routes are not addresses',
  )
  t.same(
    ipv6FromIfInet6(
      [
        '00000000000000000000000000000001 01 80 10 80       lo',
        'fd000000000000000000000000000a02 02 40 00 80     eth0',
        'fe80000000000000000000fffe000001 02 40 20 80     eth0',
        'garbage',
      ].join('\n'),
    ),
    ['::1', 'fd00::a02', 'fe80::ff:fe00:1'],
  )
})

t.test('a /proc tree: grouped by netns, host and loopback excluded, fresh scan on a miss', async (t) => {
  const proc = mkdtempSync(join(tmpdir(), 'kmesh-node-proc-'))
  t.teardown(() => rmSync(proc, { recursive: true, force: true }))
  const pid = (p: string, netns: string, v4: string[], v6 = '') => {
    mkdirSync(join(proc, p, 'ns'), { recursive: true })
    mkdirSync(join(proc, p, 'net'), { recursive: true })
    symlinkSync(`net:[${netns}]`, join(proc, p, 'ns', 'net'))
    writeFileSync(join(proc, p, 'net', 'fib_trie'), fibTrie(v4))
    writeFileSync(join(proc, p, 'net', 'if_inet6'), v6)
  }
  pid('1', 'host', ['192.168.0.10', '10.9.9.9'])
  pid('self', 'host', ['192.168.0.10'])
  pid('200', 'pod-a', ['10.244.1.2'])
  pid('201', 'pod-a', ['10.244.1.2']) // a second process of pod a
  pid('300', 'pod-b', ['10.244.1.3'], 'fd000000000000000000000000000b03 02 80 00 80 eth0\n')
  mkdirSync(join(proc, 'sys')) // not a pid
  const find = procNetnsFinder({ procRoot: proc, cacheMs: 60_000 })

  t.same(find(['10.244.1.2']), { path: join(proc, '200', 'ns', 'net'), id: 'net:[pod-a]', pid: 200 })
  t.match(find(['fd00::b03']), { id: 'net:[pod-b]', pid: 300 }, 'by IPv6 address')
  t.match(find(['fd00:0:0:0:0:0:0:b03']), { id: 'net:[pod-b]' }, 'any spelling of it')
  t.match(find(['10.0.0.1', '10.244.1.3']), { id: 'net:[pod-b]' }, 'the first of the pod IPs that matches')
  t.equal(find(['10.9.9.9']), undefined, "the host's namespace is never an answer")
  t.equal(find(['127.0.0.1']), undefined, 'loopback is never matched')
  t.equal(find([]), undefined)
  t.equal(find(['not-an-ip']), undefined)

  // A pod started after the cached scan is found by the fresh scan a miss makes.
  pid('400', 'pod-c', ['10.244.1.4'])
  await new Promise((r) => setTimeout(r, 60))
  t.match(find(['10.244.1.4']), { id: 'net:[pod-c]', pid: 400 })
})
