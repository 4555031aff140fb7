/**
 * Enrols a cgroup's network namespace the way Kmesh's CNI does (reference/kmesh-dataplane.md §4.1): a process
 * inside the cgroup connects to 0.0.0.2:929 (enrol) or :930 (unenrol). Our connect hook records the netns
 * cookie and refuses that control connect, so no packet ever leaves; the caller checks km_manage afterwards.
 */
import { spawn } from 'node:child_process'

export const CONTROL_ADDRESS = '0.0.0.2'
export const ENROL_PORT = 929
export const UNENROL_PORT = 930

const CONTROL_SCRIPT = `
import { connect } from 'node:net'
const s = connect({ host: process.argv[1], port: Number(process.argv[2]) })
s.on('connect', () => { s.destroy(); console.log('connected') })
s.on('error', (e) => console.log(e.code))
`

/**
 * Runs one control connect from inside `cgroupPath` (and, optionally, inside the network namespace at
 * `netnsPath`). Resolves with what the connect returned: 'ECONNREFUSED' when our hook handled it.
 */
export function controlConnect(cgroupPath: string, port: number, netnsPath?: string): Promise<string> {
  const node = [process.execPath, '--input-type=module', '-e', CONTROL_SCRIPT, CONTROL_ADDRESS, String(port)]
  const command = netnsPath ? ['nsenter', `--net=${netnsPath}`, ...node] : node
  return new Promise((resolve, reject) => {
    const child = spawn('sh', ['-c', 'echo $$ > "$0/cgroup.procs" && exec "$@"', cgroupPath, ...command], { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    let err = ''
    child.stdout.on('data', (d) => (out += d))
    child.stderr.on('data', (d) => (err += d))
    child.on('error', reject)
    child.on('close', (code) => {
      if (code !== 0) reject(new Error(`control connect from cgroup ${cgroupPath} failed (exit ${code}): ${err.trim()}`))
      else resolve(out.trim())
    })
  })
}
