/**
 * HAProxy (Debian's) in TCP mode as the sidecar stand-in: a userspace proxy on a loopback address that
 * accepts each connection and opens a second one to a backend (round robin), copying bytes between them.
 */
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { startProcess } from './processes.mjs'

export function startHaproxy(workDir, listen, port, backends) {
  const cfg = join(workDir, 'haproxy.cfg')
  writeFileSync(
    cfg,
    [
      'global',
      '  maxconn 4096 # this machine caps RLIMIT_NOFILE at 20000; haproxy needs 2 fds a connection',
      'defaults',
      '  mode tcp',
      '  timeout connect 5s',
      '  timeout client 30s',
      '  timeout server 30s',
      'listen bench',
      `  bind ${listen}:${port}`,
      '  balance roundrobin',
      ...backends.map(([ip, p], k) => `  server backend-${k} ${ip}:${p}`),
      '',
    ].join('\n'),
  )
  // -db: foreground, no daemon. HAProxy prints nothing when it is up: the caller probes the listener.
  return startProcess('haproxy', ['haproxy', '-db', '-f', cfg], null)
}
