/**
 * Enrols a cgroup's network namespace the way Kmesh's CNI does (docs/reference/kmesh-dataplane.md §4.1): a process
 * inside the cgroup connects to the control address and ports of include/manage.h (MANAGE_CONTROL, 0.0.0.2:929 to
 * enrol and :930 to unenrol in Kmesh). Our connect hook records the netns
 * cookie and refuses that control connect, so no packet ever leaves; the caller checks km_manage afterwards.
 */
import { manageControl } from '@kmesh-ts/bpf-progs'
import { execIn, type ExecPlace } from '../system/cgroup-exec.js'

const CONTROL_SCRIPT = `
import { connect } from 'node:net'
const s = connect({ host: process.argv[1], port: Number(process.argv[2]) })
s.on('connect', () => { s.destroy(); console.log('connected') })
s.on('error', (e) => console.log(e.code))
`

/** One control connect from inside the place; resolves with its outcome ('ECONNREFUSED' when our hook handled it). */
export async function controlConnect(
  place: ExecPlace & { cgroupPath: string },
  op: 'enrol' | 'unenrol',
): Promise<string> {
  const port = op === 'enrol' ? manageControl.enrolPort : manageControl.unenrolPort
  const out = await execIn(place, [
    process.execPath,
    '--input-type=module',
    '-e',
    CONTROL_SCRIPT,
    manageControl.ipv4,
    String(port),
  ])
  return out.trim()
}
