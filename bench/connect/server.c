/*
 * Backend for bench/connect: listens on PORT at each given IPv4 address (one process per address), reads
 * one request, answers a fixed tiny HTTP/1.0 response and closes first, so TIME_WAIT lands on the server
 * and the client never runs out of ephemeral ports.
 *
 *   server PORT IP [IP ...]
 *
 * Prints "ready" once every address listens. Children die with the parent (PR_SET_PDEATHSIG).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static const char response[] = "HTTP/1.0 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";

static int listen_on(const char *ip, int port) {
  struct sockaddr_in at = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
  if (inet_pton(AF_INET, ip, &at.sin_addr) != 1) {
    fprintf(stderr, "server: bad IPv4 address %s\n", ip);
    exit(2);
  }
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(fd, (struct sockaddr *)&at, sizeof at) < 0 || listen(fd, 4096) < 0) {
    fprintf(stderr, "server: listen on %s:%d: %s\n", ip, port, strerror(errno));
    exit(1);
  }
  return fd;
}

static void serve(int lfd) {
  char buf[1024];
  for (;;) {
    int c = accept(lfd, NULL, NULL);
    if (c < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      perror("server: accept");
      exit(1);
    }
    /* The request is one small segment; read once, answer, close. */
    if (read(c, buf, sizeof buf) > 0) (void)!write(c, response, sizeof response - 1);
    close(c);
  }
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: server PORT IP [IP ...]\n");
    return 2;
  }
  int port = atoi(argv[1]);
  int fds[64];
  int count = argc - 2 > 64 ? 64 : argc - 2;
  for (int i = 0; i < count; i++) fds[i] = listen_on(argv[i + 2], port);
  for (int i = 0; i < count; i++) {
    pid_t pid = fork();
    if (pid < 0) { perror("server: fork"); return 1; }
    if (pid == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() == 1) _exit(0);
      serve(fds[i]);
    }
  }
  printf("ready\n");
  fflush(stdout);
  for (;;) {
    if (wait(NULL) < 0 && errno == ECHILD) return 0;
  }
}
