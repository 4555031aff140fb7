/**
 * The probe as a process, meant to run inside a managed cgroup; prints the tally as JSON.
 * Usage: node probe-client.js '{"targets":[{"host":"127.10.0.1","port":80}],"count":300}'
 */
import { probe, type ProbeTarget } from './probe.js'

const { targets, count } = JSON.parse(process.argv[2] ?? '{}') as { targets: ProbeTarget[]; count: number }
process.stdout.write(JSON.stringify(await probe(targets, count)) + '\n')
