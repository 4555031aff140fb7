import koffi from 'koffi'

/** The few libc calls the netlink client makes, bound once through koffi. Buffers are passed by reference. */
export interface Libc {
  socket(domain: number, type: number, protocol: number): number
  bind(fd: number, addr: Buffer, len: number): number
  sendto(fd: number, buf: Buffer, len: number, flags: number, addr: Buffer, addrLen: number): number
  recv(fd: number, buf: Buffer, len: number, flags: number): number
  setsockopt(fd: number, level: number, name: number, value: Buffer, len: number): number
  setns(fd: number, nstype: number): number
  close(fd: number): number
  /** errno of the last failed call on this thread. */
  errno(): number
}

let bound: Libc | undefined

export function libc(): Libc {
  if (bound) return bound
  const lib = koffi.load('libc.so.6')
  const f = {
    socket: lib.func('int socket(int domain, int type, int protocol)'),
    bind: lib.func('int bind(int fd, const void *addr, uint32_t len)'),
    sendto: lib.func(
      'intptr_t sendto(int fd, const void *buf, size_t len, int flags, const void *addr, uint32_t addrlen)',
    ),
    recv: lib.func('intptr_t recv(int fd, void *buf, size_t len, int flags)'),
    setsockopt: lib.func('int setsockopt(int fd, int level, int name, const void *value, uint32_t len)'),
    setns: lib.func('int setns(int fd, int nstype)'),
    close: lib.func('int close(int fd)'),
  }
  bound = {
    socket: (d, t, p) => f.socket(d, t, p) as number,
    bind: (fd, a, l) => f.bind(fd, a, l) as number,
    sendto: (fd, b, l, fl, a, al) => Number(f.sendto(fd, b, l, fl, a, al)),
    recv: (fd, b, l, fl) => Number(f.recv(fd, b, l, fl)),
    setsockopt: (fd, lv, n, v, l) => f.setsockopt(fd, lv, n, v, l) as number,
    setns: (fd, t) => f.setns(fd, t) as number,
    close: (fd) => f.close(fd) as number,
    errno: () => koffi.errno(),
  }
  return bound
}
