/**
 * The kube-proxy stand-in's network namespace: lo up, a veth pair whose one end holds the "pod" addresses
 * (the backend, 10.244.0.1), a route for the ClusterIP range (10.96.0.0/12) so a connect() has a route
 * before the OUTPUT chain DNATs it, and the nat rules loaded with one iptables-restore. Every address here
 * exists only inside this namespace; the host's iptables are never touched.
 */
import { run } from './processes.mjs'
import { NETNS_BACKENDS } from './kube-proxy-rules.mjs'

export async function createNetns(name, rules) {
  const path = `/run/netns/${name}`
  await run(['ip', 'netns', 'add', name])
  const inside = (argv, input) => run(['nsenter', `--net=${path}`, ...argv], input)
  try {
    await inside(['ip', 'link', 'set', 'lo', 'up'])
    await inside(['ip', 'link', 'add', 'kb0', 'type', 'veth', 'peer', 'name', 'kb1'])
    await inside(['ip', 'link', 'set', 'kb0', 'up'])
    await inside(['ip', 'link', 'set', 'kb1', 'up'])
    for (const ip of NETNS_BACKENDS) await inside(['ip', 'addr', 'add', `${ip}/16`, 'dev', 'kb0'])
    await inside(['ip', 'route', 'add', '10.96.0.0/12', 'dev', 'kb0'])
    await inside(['iptables-restore'], rules)
  } catch (err) {
    await run(['ip', 'netns', 'del', name]).catch(() => {})
    throw err
  }
  return { path, remove: () => run(['ip', 'netns', 'del', name]) }
}
