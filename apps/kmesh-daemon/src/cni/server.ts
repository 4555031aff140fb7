/**
 * The daemon's end of the kmesh-cni socket (cni/kmesh-cni.c): one connection per CNI call, one JSON object per line.
 *   plugin -> daemon  {"command":"ADD"|"DEL"|"CHECK","containerId","netns","ifname","podNamespace","podName","podUid"}
 *   daemon -> plugin  {"enrol":true|false,"reason":"..."}
 *   plugin -> daemon  {"enrolled":true|false,"detail":"..."}  after its control connect (ADD told to enrol, and DEL)
 * The decision is the caller's (decide(), e.g. Kmesh's ShouldEnroll rule); this module only speaks the protocol.
 * DEL is not decided (the plugin always unenrols) and CHECK gets an answer but sends no outcome.
 */
import { randomBytes } from 'node:crypto'
import { chmodSync, lstatSync, mkdirSync, renameSync, type Stats, statSync, unlinkSync } from 'node:fs'
import { createServer, type Server, type Socket } from 'node:net'
import { dirname } from 'node:path'

export const CNI_COMMANDS = ['ADD', 'DEL', 'CHECK'] as const
export type CniCommand = (typeof CNI_COMMANDS)[number]

/** One CNI call as the plugin describes it (pod fields from CNI_ARGS; empty when the runtime gave none). */
export interface CniPod {
  command: CniCommand
  containerId: string
  netns: string
  ifname: string
  podNamespace: string
  podName: string
  podUid: string
}

export interface EnrolDecision {
  enrol: boolean
  reason: string
}

/** The pino methods used here, so tests can pass a plain object. */
export interface CniLog {
  info(obj: object, msg: string): void
  warn(obj: object, msg: string): void
  debug(obj: object, msg: string): void
}

export interface CniServerOptions {
  socketPath: string
  /** Whether the pod of an ADD (or CHECK) is managed. A throw or rejection answers "no" with its message. */
  decide(pod: CniPod): EnrolDecision | Promise<EnrolDecision>
  /** The plugin's control-connect outcome: ADD told to enrol (enrolled = the hook took it), and every DEL. */
  onResult?(pod: CniPod, enrolled: boolean, detail: string): void
  log: CniLog
  /** A connection idle this long is dropped (default 5000 ms; the plugin itself gives up after 2 s). */
  idleTimeoutMs?: number
  /** Longest line accepted (default 4096 bytes, as the plugin's). */
  maxLineBytes?: number
}

export interface CniServer extends AsyncDisposable {
  readonly socketPath: string
  /** Stops listening, drops open connections and removes the socket file if it is still ours. Idempotent. */
  close(): Promise<void>
}

const MAX_CONNECTIONS = 128
/** sockaddr_un.sun_path holds 108 bytes including the terminating NUL. */
const MAX_SOCKET_PATH = 107

/**
 * Listens on socketPath with mode 0600. The socket is bound under a temporary name, chmod-ed, then renamed onto
 * socketPath: a stale socket left by a killed daemon is replaced, and the path never serves with wider permissions.
 */
export async function startCniServer(options: CniServerOptions): Promise<CniServer> {
  const { socketPath, log } = options
  if (Buffer.byteLength(socketPath) > MAX_SOCKET_PATH - 9)
    throw new Error(
      `CNI socket path ${socketPath} is too long for a unix socket (at most ${MAX_SOCKET_PATH - 9} bytes)`,
    )
  const existing = lstatOrUndefined(socketPath)
  if (existing && !existing.isSocket())
    throw new Error(`CNI socket path ${socketPath} exists and is not a socket; refusing to replace it`)
  mkdirSync(dirname(socketPath), { recursive: true, mode: 0o755 })

  const connections = new Set<Socket>()
  const server = createServer((socket) => {
    connections.add(socket)
    socket.once('close', () => connections.delete(socket))
    serveConnection(socket, options)
  })
  server.maxConnections = MAX_CONNECTIONS
  const temp = `${socketPath}.${randomBytes(4).toString('hex')}`
  await listen(server, temp)
  let identity: { dev: number; ino: number }
  try {
    chmodSync(temp, 0o600)
    renameSync(temp, socketPath)
    const st = statSync(socketPath)
    identity = { dev: st.dev, ino: st.ino }
  } catch (e) {
    server.close()
    unlinkQuietly(temp)
    throw new Error(`CNI socket ${socketPath}: ${(e as Error).message}`)
  }
  if (existing) log.info({ socketPath }, 'replaced an existing CNI socket file (a previous daemon left it)')
  log.info({ socketPath }, 'CNI socket listening')

  let closing: Promise<void> | undefined
  const close = (): Promise<void> =>
    (closing ??= new Promise<void>((resolve) => {
      for (const c of connections) c.destroy()
      server.close(() => resolve())
      // Only our own socket is removed: a newer daemon may have replaced the path meanwhile.
      const st = lstatOrUndefined(socketPath)
      if (st && st.dev === identity.dev && st.ino === identity.ino) unlinkQuietly(socketPath)
    }))
  return { socketPath, close, [Symbol.asyncDispose]: close }
}

function serveConnection(socket: Socket, options: CniServerOptions): void {
  const { log } = options
  const maxLine = options.maxLineBytes ?? 4096
  let buffered = ''
  let pod: CniPod | undefined
  let answered = false
  let awaitingOutcome = false
  let queue = Promise.resolve() // lines are handled one after the other, the answer before the outcome
  socket.setEncoding('utf8')
  socket.setTimeout(options.idleTimeoutMs ?? 5000, () => {
    log.warn({ pod: pod && podName(pod), awaitingOutcome }, 'CNI connection idle too long; dropped')
    socket.destroy()
  })
  socket.on('error', (e) => log.debug({ error: e.message }, 'CNI connection error'))
  const onLine = async (line: string): Promise<void> => {
    if (!answered) return answer(line)
    if (!awaitingOutcome || !pod) return void socket.destroy()
    awaitingOutcome = false
    const outcome = parseOutcome(line)
    if (!outcome) log.warn({ pod: podName(pod), line: line.slice(0, 200) }, 'CNI plugin sent a malformed outcome')
    else {
      log.info({ pod: podName(pod), command: pod.command, ...outcome }, 'CNI plugin outcome')
      try {
        options.onResult?.(pod, outcome.enrolled, outcome.detail)
      } catch (e) {
        log.warn({ pod: podName(pod), error: (e as Error).message }, 'CNI onResult failed')
      }
    }
    socket.end()
  }
  const answer = async (line: string): Promise<void> => {
    answered = true
    const request = parseRequest(line)
    if (typeof request === 'string') {
      log.warn({ error: request, line: line.slice(0, 200) }, 'CNI plugin sent a malformed request')
      socket.end(`${JSON.stringify({ enrol: false, reason: `bad request: ${request}` })}\n`)
      return
    }
    pod = request
    let decision: EnrolDecision
    if (request.command === 'DEL') decision = { enrol: false, reason: 'pod deleted: the plugin unenrols it' }
    else {
      try {
        decision = await options.decide(request)
      } catch (e) {
        decision = { enrol: false, reason: `decide failed: ${(e as Error).message}` }
        log.warn({ pod: podName(request), error: (e as Error).message }, 'CNI enrol decision failed')
      }
    }
    log.info({ pod: podName(request), command: request.command, ...decision }, 'CNI request answered')
    if (socket.destroyed) return
    awaitingOutcome = request.command === 'DEL' || (request.command === 'ADD' && decision.enrol)
    const reply = `${JSON.stringify({ enrol: decision.enrol, reason: decision.reason })}\n`
    if (awaitingOutcome) socket.write(reply)
    else socket.end(reply)
  }
  socket.on('data', (chunk: string) => {
    buffered += chunk
    for (let nl = buffered.indexOf('\n'); nl >= 0; nl = buffered.indexOf('\n')) {
      const line = buffered.slice(0, nl)
      buffered = buffered.slice(nl + 1)
      queue = queue.then(() => onLine(line))
    }
    if (Buffer.byteLength(buffered) > maxLine) {
      log.warn({ bytes: Buffer.byteLength(buffered), maxLine }, 'CNI line too long; connection dropped')
      socket.destroy()
    }
  })
}

/** A request line, or why it is not one. Exported for the unit test. */
export function parseRequest(line: string): CniPod | string {
  let v: unknown
  try {
    v = JSON.parse(line)
  } catch {
    return 'not JSON'
  }
  if (!v || typeof v !== 'object' || Array.isArray(v)) return 'not an object'
  const o = v as Record<string, unknown>
  if (!CNI_COMMANDS.includes(o.command as CniCommand)) return `command must be one of ${CNI_COMMANDS.join(', ')}`
  const pod = { command: o.command as CniCommand } as CniPod
  for (const key of ['containerId', 'netns', 'ifname', 'podNamespace', 'podName', 'podUid'] as const) {
    if (typeof o[key] !== 'string') return `${key} must be a string`
    pod[key] = o[key]
  }
  return pod
}

function parseOutcome(line: string): { enrolled: boolean; detail: string } | undefined {
  try {
    const o = JSON.parse(line) as Record<string, unknown>
    if (typeof o.enrolled === 'boolean' && typeof o.detail === 'string')
      return { enrolled: o.enrolled, detail: o.detail }
  } catch {
    /* malformed */
  }
  return undefined
}

function podName(pod: CniPod): string {
  return pod.podName ? `${pod.podNamespace}/${pod.podName}` : `container ${pod.containerId}`
}

function listen(server: Server, path: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(path, () => {
      server.off('error', reject)
      resolve()
    })
  })
}

function lstatOrUndefined(path: string): Stats | undefined {
  try {
    return lstatSync(path)
  } catch {
    return undefined
  }
}

function unlinkQuietly(path: string): void {
  try {
    unlinkSync(path)
  } catch {
    /* already gone */
  }
}
