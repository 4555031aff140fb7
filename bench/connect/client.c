/*
 * Load generator for bench/connect: N times { socket, connect, write a small request, read the response to
 * EOF, close with RST }, each timed with CLOCK_MONOTONIC. C so that the client's own overhead is a few microseconds
 * and a 5% difference in the connect path stays visible (node adds ~100 us per connection).
 *
 *   client IP PORT ITERATIONS [WARMUP]
 *
 * Prints one line: n=.. mean_ns=.. p50_ns=.. p99_ns=.. min_ns=..  Any failed operation ends the run with
 * exit 1 and the errno: a benchmark whose connects fail measures nothing.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static const char request[] = "GET / HTTP/1.0\r\nHost: bench\r\n\r\n";

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void die(const char *what, long i) {
  fprintf(stderr, "client: %s failed at iteration %ld: %s\n", what, i, strerror(errno));
  exit(1);
}

/* One connect + request/response; returns the number of response bytes. */
static long one(const struct sockaddr_in *to, long i) {
  char buf[512];
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) die("socket", i);
  if (connect(fd, (const struct sockaddr *)to, sizeof *to) < 0) die("connect", i);
  if (write(fd, request, sizeof request - 1) != (ssize_t)(sizeof request - 1)) die("write", i);
  long got = 0;
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0) die("read", i);
    if (n == 0) break;
    got += n;
  }
  /* Abortive close (RST): the server has already closed, so neither side keeps a TIME_WAIT socket. Left in
   * place, server-side TIME_WAITs on the one backend 4-tuple space that every variant shares make a
   * variant pay for its predecessor's connections (a SYN that lands on a TIME_WAIT socket). */
  struct linger abort_close = { .l_onoff = 1, .l_linger = 0 };
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &abort_close, sizeof abort_close);
  close(fd);
  if (got == 0) { errno = ECONNRESET; die("empty response", i); }
  return got;
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: client IP PORT ITERATIONS [WARMUP]\n");
    return 2;
  }
  struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[2])) };
  if (inet_pton(AF_INET, argv[1], &to.sin_addr) != 1) {
    fprintf(stderr, "client: bad IPv4 address %s\n", argv[1]);
    return 2;
  }
  long n = atol(argv[3]);
  long warmup = argc > 4 ? atol(argv[4]) : n / 10;
  if (n < 1) return 2;
  uint64_t *t = malloc(sizeof *t * (size_t)n);
  if (!t) return 1;
  for (long i = 0; i < warmup; i++) one(&to, -1 - i);
  uint64_t total = 0;
  for (long i = 0; i < n; i++) {
    uint64_t start = now_ns();
    one(&to, i);
    t[i] = now_ns() - start;
    total += t[i];
  }
  qsort(t, (size_t)n, sizeof *t, cmp_u64);
  printf("n=%ld mean_ns=%llu p50_ns=%llu p99_ns=%llu min_ns=%llu\n", n, (unsigned long long)(total / (uint64_t)n),
         (unsigned long long)t[n / 2], (unsigned long long)t[(n * 99) / 100], (unsigned long long)t[0]);
  return 0;
}
