/**
 * Profiles on request, through node:inspector in this process (no flag, no restart):
 *   CPU: sampled for `seconds`, returned as a .cpuprofile (Chrome DevTools / speedscope read it);
 *   heap: a sampling heap profile over `seconds` (.heapprofile), or a full heap snapshot (.heapsnapshot) streamed
 *         chunk by chunk (it is as large as the heap: asked for explicitly).
 * One profile at a time: the inspector session is the process's.
 */
import { Session } from 'node:inspector'

let busy = false

function post<T>(session: Session, method: string, params?: object): Promise<T> {
  return new Promise((resolve, reject) =>
    session.post(method, params ?? {}, (err, result) => (err ? reject(err) : resolve(result as T))),
  )
}

async function withSession<T>(run: (s: Session) => Promise<T>): Promise<T> {
  if (busy) throw new ProfileBusyError()
  busy = true
  const session = new Session()
  session.connect()
  try {
    return await run(session)
  } finally {
    session.disconnect()
    busy = false
  }
}

export class ProfileBusyError extends Error {
  constructor() {
    super('a profile is being taken; try again when it is done')
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

export function cpuProfile(seconds: number): Promise<object> {
  return withSession(async (s) => {
    await post(s, 'Profiler.enable')
    await post(s, 'Profiler.start')
    await sleep(seconds * 1000)
    const { profile } = await post<{ profile: object }>(s, 'Profiler.stop')
    await post(s, 'Profiler.disable')
    return profile
  })
}

export function heapSamplingProfile(seconds: number): Promise<object> {
  return withSession(async (s) => {
    await post(s, 'HeapProfiler.enable')
    await post(s, 'HeapProfiler.startSampling', { samplingInterval: 32768 })
    await sleep(seconds * 1000)
    const { profile } = await post<{ profile: object }>(s, 'HeapProfiler.stopSampling')
    await post(s, 'HeapProfiler.disable')
    return profile
  })
}

/** Writes a full heap snapshot to `write` as it is produced. */
export function heapSnapshot(write: (chunk: string) => void): Promise<void> {
  return withSession(async (s) => {
    s.on('HeapProfiler.addHeapSnapshotChunk', (m) => write((m.params as { chunk: string }).chunk))
    await post(s, 'HeapProfiler.takeHeapSnapshot', { reportProgress: false })
  })
}
