// SPDX-License-Identifier: Apache-2.0
/*
 * kmesh-cni: the kmesh-ts CNI plugin, chained after the node's primary plugin (CNI spec 1.0: ADD, DEL, CHECK,
 * VERSION). It does not decide anything itself: it asks the kmesh-ts daemon over a unix socket whether the pod is
 * managed, and when told so it enrols the pod's network namespace the way Kmesh's CNI does
 * (docs/reference/kmesh-dataplane.md §4.1): from inside that netns, a non-blocking TCP connect to 0.0.0.2:929
 * (:930 unenrols). The daemon's connect hook records the netns cookie in km_manage and refuses that connect, so
 * the refusal (ECONNREFUSED, returned by connect(2) itself) is the sign that the hook handled it.
 *
 * Pod creation never depends on the daemon: when its socket is missing or slow (2 s in all), ADD still returns
 * the previous plugin's result and the daemon's pod reconciler enrols the pod later.
 *
 * Socket protocol (one JSON object per line, see apps/kmesh-daemon/README.md "CNI plugin"):
 *   plugin -> daemon  {"command":"ADD"|"DEL"|"CHECK","containerId":..,"netns":..,"ifname":..,
 *                      "podNamespace":..,"podName":..,"podUid":..}
 *   daemon -> plugin  {"enrol":true|false,"reason":".."}
 *   plugin -> daemon  {"enrolled":true|false,"detail":".."}   only after a control connect (ADD told to enrol, DEL)
 *
 * Self-contained on purpose (a static binary, no node on the host); built by scripts/build-cni.mjs.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_SOCKET "/var/run/kmesh-ts/cni.sock"
#define MAX_STDIN (1 << 20)     /* network configs are small; anything bigger is refused, not truncated */
#define MAX_LINE 4096           /* longest line accepted from the daemon */
#define MAX_DEPTH 64            /* JSON nesting accepted (the scanner recurses) */
#define DAEMON_BUDGET_MS 2000   /* connect + request + answer, in all */
#define RESULT_BUDGET_MS 500    /* writing the outcome line back */
#define CONTROL_WAIT_MS 250     /* how long an unhandled control connect is watched before it is called unhandled */
#define ENROL_PORT 929          /* include/manage.h MANAGE_ENROL_PORT */
#define UNENROL_PORT 930        /* include/manage.h MANAGE_UNENROL_PORT */

/* CNI spec error codes (SPEC.md "Error"). */
enum { ERR_VERSION = 1, ERR_CONTAINER = 3, ERR_ENV = 4, ERR_IO = 5, ERR_DECODE = 6, ERR_CONFIG = 7 };

/* Versions whose results chain (prevResult appeared in 0.3.0); CHECK exists from 0.4.0 on. */
static const char *const SUPPORTED[] = {"0.3.0", "0.3.1", "0.4.0", "1.0.0"};
#define N_SUPPORTED (sizeof(SUPPORTED) / sizeof(SUPPORTED[0]))

/* ---- growable byte buffer, always NUL-terminated ---- */

struct buf {
	char *p;
	size_t len, cap;
};

static void buf_add(struct buf *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		while (cap < b->len + n + 1)
			cap *= 2;
		char *p = realloc(b->p, cap);
		if (!p) {
			fputs("kmesh-cni: out of memory\n", stderr);
			exit(2);
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void buf_str(struct buf *b, const char *s) { buf_add(b, s, strlen(s)); }

static const char *buf_cstr(const struct buf *b) { return b->p ? b->p : ""; }

/* Appends s as a JSON string literal (quotes included). Bytes >= 0x80 pass through: inputs are UTF-8. */
static void buf_json(struct buf *b, const char *s)
{
	buf_add(b, "\"", 1);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		char esc[8];
		if (c == '"' || c == '\\') {
			esc[0] = '\\';
			esc[1] = (char)c;
			buf_add(b, esc, 2);
		} else if (c < 0x20) {
			snprintf(esc, sizeof(esc), "\\u%04x", c);
			buf_add(b, esc, 6);
		} else {
			buf_add(b, s, 1);
		}
	}
	buf_add(b, "\"", 1);
}

/* ---- CNI output ---- */

static const char *g_version = "1.0.0"; /* echoed in every answer; the config's once it is known to be valid */

/* Prints a CNI error object on stdout (where the runtime reads it) and exits non-zero. */
static void __attribute__((noreturn)) fail(int code, const char *msg, const char *details)
{
	struct buf out = {0};
	buf_str(&out, "{\"cniVersion\":");
	buf_json(&out, g_version);
	char num[32];
	snprintf(num, sizeof(num), ",\"code\":%d,\"msg\":", code);
	buf_str(&out, num);
	buf_json(&out, msg);
	buf_str(&out, ",\"details\":");
	buf_json(&out, details ? details : "");
	buf_str(&out, "}\n");
	fputs(out.p, stdout);
	fprintf(stderr, "kmesh-cni: error %d: %s: %s\n", code, msg, details ? details : "");
	exit(1);
}

/* ---- a small validating JSON scanner: it finds the extent of values, it does not build trees ---- */

struct span {
	const char *p; /* first byte of the value */
	size_t n;      /* its length in bytes */
};

static const char *skip_ws(const char *s, const char *end)
{
	while (s < end && (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r'))
		s++;
	return s;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* s points at '"'; returns the byte after the closing quote, or NULL when the string is malformed. */
static const char *scan_string(const char *s, const char *end)
{
	for (s++; s < end; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"')
			return s + 1;
		if (c < 0x20)
			return NULL; /* raw control characters are not allowed inside JSON strings */
		if (c != '\\')
			continue;
		if (++s >= end)
			return NULL;
		if (*s == 'u') {
			if (end - s < 5)
				return NULL;
			for (int i = 1; i <= 4; i++)
				if (hexval(s[i]) < 0)
					return NULL;
			s += 4;
		} else if (!strchr("\"\\/bfnrt", *s)) {
			return NULL;
		}
	}
	return NULL;
}

static const char *scan_digits(const char *s, const char *end)
{
	const char *start = s;
	while (s < end && *s >= '0' && *s <= '9')
		s++;
	return s > start ? s : NULL;
}

/* RFC 8259 number: -? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)? */
static const char *scan_number(const char *s, const char *end)
{
	if (s < end && *s == '-')
		s++;
	if (s < end && *s == '0')
		s++;
	else if (!(s = scan_digits(s, end)))
		return NULL;
	if (s < end && *s == '.' && !(s = scan_digits(s + 1, end)))
		return NULL;
	if (s < end && (*s == 'e' || *s == 'E')) {
		s++;
		if (s < end && (*s == '+' || *s == '-'))
			s++;
		if (!(s = scan_digits(s, end)))
			return NULL;
	}
	return s;
}

static const char *scan_value(const char *s, const char *end, int depth);

/* s points at '{' or '['; scans the members or elements. */
static const char *scan_container(const char *s, const char *end, int depth)
{
	char close = *s == '{' ? '}' : ']';
	bool object = close == '}';
	s = skip_ws(s + 1, end);
	if (s < end && *s == close)
		return s + 1;
	for (;;) {
		if (object) {
			if (s >= end || *s != '"' || !(s = scan_string(s, end)))
				return NULL;
			s = skip_ws(s, end);
			if (s >= end || *s != ':')
				return NULL;
			s = skip_ws(s + 1, end);
		}
		if (!(s = scan_value(s, end, depth + 1)))
			return NULL;
		s = skip_ws(s, end);
		if (s < end && *s == ',') {
			s = skip_ws(s + 1, end);
			continue;
		}
		return s < end && *s == close ? s + 1 : NULL;
	}
}

/* Returns the byte after the value that starts at s (no leading whitespace), or NULL when it is not valid JSON. */
static const char *scan_value(const char *s, const char *end, int depth)
{
	if (s >= end || depth > MAX_DEPTH)
		return NULL;
	switch (*s) {
	case '{':
	case '[':
		return scan_container(s, end, depth);
	case '"':
		return scan_string(s, end);
	case 't':
		return end - s >= 4 && !memcmp(s, "true", 4) ? s + 4 : NULL;
	case 'f':
		return end - s >= 5 && !memcmp(s, "false", 5) ? s + 5 : NULL;
	case 'n':
		return end - s >= 4 && !memcmp(s, "null", 4) ? s + 4 : NULL;
	default:
		return scan_number(s, end);
	}
}

/* Whole text is exactly one JSON object (surrounding whitespace allowed); *obj gets its span. */
static bool parse_object(const char *text, size_t len, struct span *obj)
{
	const char *end = text + len;
	const char *s = skip_ws(text, end);
	if (s >= end || *s != '{')
		return false;
	const char *after = scan_value(s, end, 0);
	if (!after || skip_ws(after, end) != end)
		return false;
	obj->p = s;
	obj->n = (size_t)(after - s);
	return true;
}

static void put_utf8(struct buf *out, unsigned cp)
{
	char u[4];
	size_t n;
	if (cp < 0x80) {
		u[0] = (char)cp;
		n = 1;
	} else if (cp < 0x800) {
		u[0] = (char)(0xc0 | cp >> 6);
		u[1] = (char)(0x80 | (cp & 0x3f));
		n = 2;
	} else if (cp < 0x10000) {
		u[0] = (char)(0xe0 | cp >> 12);
		u[1] = (char)(0x80 | (cp >> 6 & 0x3f));
		u[2] = (char)(0x80 | (cp & 0x3f));
		n = 3;
	} else {
		u[0] = (char)(0xf0 | cp >> 18);
		u[1] = (char)(0x80 | (cp >> 12 & 0x3f));
		u[2] = (char)(0x80 | (cp >> 6 & 0x3f));
		u[3] = (char)(0x80 | (cp & 0x3f));
		n = 4;
	}
	buf_add(out, u, n);
}

static unsigned hex4(const char *s)
{
	return (unsigned)(hexval(s[0]) << 12 | hexval(s[1]) << 8 | hexval(s[2]) << 4 | hexval(s[3]));
}

/* Decodes a scanned (so well-formed) string literal into out. False for \u0000, which C strings cannot hold. */
static bool decode_string(struct span sp, struct buf *out)
{
	out->len = 0;
	buf_add(out, "", 0);
	const char *s = sp.p + 1, *end = sp.p + sp.n - 1;
	while (s < end) {
		if (*s != '\\') {
			buf_add(out, s++, 1);
			continue;
		}
		char e = s[1];
		s += 2;
		if (e != 'u') {
			const char *from = "\"\\/bfnrt", *to = "\"\\/\b\f\n\r\t";
			buf_add(out, to + (strchr(from, e) - from), 1);
			continue;
		}
		unsigned cp = hex4(s);
		s += 4;
		/* a high surrogate followed by an escaped low surrogate is one code point; a lone one becomes U+FFFD */
		if (cp >= 0xd800 && cp < 0xdc00 && end - s >= 6 && s[0] == '\\' && s[1] == 'u') {
			unsigned lo = hex4(s + 2);
			if (lo >= 0xdc00 && lo < 0xe000) {
				cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
				s += 6;
			}
		}
		if (cp >= 0xd800 && cp < 0xe000)
			cp = 0xfffd;
		if (cp == 0)
			return false;
		put_utf8(out, cp);
	}
	return true;
}

/*
 * Finds member `key` of a scanned object. Returns 1 and its value's span, 0 when absent. A key given twice
 * yields its last value, as Go's encoding/json (libcni, the runtimes) reads it.
 */
static int object_get(struct span obj, const char *key, struct span *value)
{
	const char *s = obj.p + 1, *end = obj.p + obj.n;
	struct buf name = {0};
	int found = 0;
	for (;;) {
		s = skip_ws(s, end);
		if (*s != '"')
			break; /* '}' of an empty object; the object was validated before */
		struct span k = {s, 0};
		s = scan_string(s, end);
		k.n = (size_t)(s - k.p);
		s = skip_ws(s, end) + 1; /* ':' */
		s = skip_ws(s, end);
		const char *v = s;
		s = scan_value(s, end, 1);
		if (decode_string(k, &name) && !strcmp(buf_cstr(&name), key)) {
			value->p = v;
			value->n = (size_t)(s - v);
			found = 1;
		}
		s = skip_ws(s, end);
		if (*s != ',')
			break;
		s++;
	}
	free(name.p);
	return found;
}

/* Member `key` as a string: 1 found, 0 absent, -1 present but not a (decodable) string. */
static int object_string(struct span obj, const char *key, struct buf *out)
{
	struct span v;
	if (!object_get(obj, key, &v))
		return 0;
	return v.p[0] == '"' && decode_string(v, out) ? 1 : -1;
}

/* Member `key` as a boolean: 1 true, 0 false, -1 absent or not a boolean. */
static int object_bool(struct span obj, const char *key)
{
	struct span v;
	if (!object_get(obj, key, &v))
		return -1;
	if (v.n == 4 && !memcmp(v.p, "true", 4))
		return 1;
	if (v.n == 5 && !memcmp(v.p, "false", 5))
		return 0;
	return -1;
}

/* ---- environment and configuration ---- */

static const char *env(const char *name)
{
	const char *v = getenv(name);
	return v ? v : "";
}

static bool supported(const char *version)
{
	for (size_t i = 0; i < N_SUPPORTED; i++)
		if (!strcmp(version, SUPPORTED[i]))
			return true;
	return false;
}

/* One value from CNI_ARGS ("K1=V1;K2=V2", Kubernetes runtimes pass K8S_POD_NAMESPACE/NAME/UID). */
static void cni_arg(const char *name, struct buf *out)
{
	out->len = 0;
	buf_add(out, "", 0);
	size_t n = strlen(name);
	for (const char *s = env("CNI_ARGS"); *s;) {
		const char *e = strchr(s, ';');
		size_t len = e ? (size_t)(e - s) : strlen(s);
		if (len > n && !strncmp(s, name, n) && s[n] == '=') {
			buf_add(out, s + n + 1, len - n - 1);
			return;
		}
		s += len + (e ? 1 : 0);
	}
}

static void read_stdin(struct buf *in)
{
	char chunk[4096];
	for (;;) {
		ssize_t n = read(STDIN_FILENO, chunk, sizeof(chunk));
		if (n == 0)
			return;
		if (n < 0) {
			if (errno == EINTR)
				continue;
			fail(ERR_IO, "reading the network configuration from stdin failed", strerror(errno));
		}
		if (in->len + (size_t)n > MAX_STDIN)
			fail(ERR_DECODE, "the network configuration on stdin is larger than 1 MiB", NULL);
		buf_add(in, chunk, (size_t)n);
	}
}

/* ---- talking to the daemon ---- */

static long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* Waits for fd to become ready for `events` until the deadline. 1 ready, 0 timed out, -1 error. */
static int wait_fd(int fd, short events, long deadline)
{
	for (;;) {
		long left = deadline - now_ms();
		if (left <= 0)
			return 0;
		struct pollfd p = {.fd = fd, .events = events};
		int r = poll(&p, 1, (int)left);
		if (r < 0 && errno == EINTR)
			continue;
		return r < 0 ? -1 : r > 0;
	}
}

/* Connects to the daemon's socket; -1 with `why` filled when it is absent, refuses or is too slow. */
static int daemon_connect(const char *path, long deadline, struct buf *why)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(addr.sun_path)) {
		buf_str(why, "socket path too long");
		return -1;
	}
	strcpy(addr.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		buf_str(why, strerror(errno));
		return -1;
	}
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0)
		return fd;
	if (errno == EAGAIN || errno == EINPROGRESS) { /* listen backlog full: wait for room */
		int err = 0;
		socklen_t len = sizeof(err);
		if (wait_fd(fd, POLLOUT, deadline) == 1 && !getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) && !err)
			return fd;
		buf_str(why, err ? strerror(err) : "timed out connecting");
	} else {
		buf_str(why, strerror(errno));
	}
	close(fd);
	return -1;
}

static bool write_all(int fd, const char *p, size_t n, long deadline)
{
	while (n > 0) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EAGAIN && wait_fd(fd, POLLOUT, deadline) == 1)
			continue;
		if (w < 0)
			return false;
		p += w;
		n -= (size_t)w;
	}
	return true;
}

/* Reads one line (without its '\n') before the deadline; false on timeout, EOF, error or an over-long line. */
static bool read_line(int fd, struct buf *line, long deadline)
{
	line->len = 0;
	buf_add(line, "", 0);
	for (;;) {
		char c;
		ssize_t r = recv(fd, &c, 1, 0); /* byte by byte: answers are one short line, and nothing is read past it */
		if (r == 1) {
			if (c == '\n')
				return true;
			if (line->len >= MAX_LINE)
				return false;
			buf_add(line, &c, 1);
			continue;
		}
		if (r == 0)
			return false;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN || wait_fd(fd, POLLIN, deadline) != 1)
			return false;
	}
}

/* ---- enrolment: the control connect from inside the pod's network namespace ---- */

/* Kmesh's rule: ::2 only when the namespace has IPv6 but no IPv4 address (loopback aside). */
static int control_family(void)
{
	struct ifaddrs *list;
	bool has4 = false, has6 = false;
	if (getifaddrs(&list) != 0)
		return AF_INET;
	for (struct ifaddrs *i = list; i; i = i->ifa_next) {
		if (!i->ifa_addr || (i->ifa_flags & IFF_LOOPBACK))
			continue;
		has4 |= i->ifa_addr->sa_family == AF_INET;
		has6 |= i->ifa_addr->sa_family == AF_INET6;
	}
	freeifaddrs(list);
	return !has4 && has6 ? AF_INET6 : AF_INET;
}

enum control_outcome { HANDLED, UNHANDLED, NETNS_GONE };

/*
 * Enters `netns` and connects to the control address on `port`. Our hook refuses the connect inside connect(2)
 * (ECONNREFUSED right away); anything else — success, EINPROGRESS, another error — means no hook saw it. An
 * in-progress connect is watched for CONTROL_WAIT_MS so the detail can say what became of it.
 */
static enum control_outcome control_connect(const char *netns, int port, struct buf *detail)
{
	int nsfd = open(netns, O_RDONLY | O_CLOEXEC);
	if (nsfd < 0) {
		int err = errno;
		buf_str(detail, "opening the network namespace failed: ");
		buf_str(detail, strerror(err));
		return err == ENOENT ? NETNS_GONE : UNHANDLED;
	}
	if (setns(nsfd, CLONE_NEWNET) != 0) {
		buf_str(detail, "entering the network namespace failed: ");
		buf_str(detail, strerror(errno));
		close(nsfd);
		return UNHANDLED;
	}
	close(nsfd);

	int family = control_family();
	int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0 && family == AF_INET) { /* a kernel without IPv4 sockets: the IPv6 control address still works */
		family = AF_INET6;
		fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	}
	if (fd < 0) {
		buf_str(detail, "socket failed: ");
		buf_str(detail, strerror(errno));
		return UNHANDLED;
	}
	struct sockaddr_in in4 = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	struct sockaddr_in6 in6 = {.sin6_family = AF_INET6, .sin6_port = htons((uint16_t)port)};
	in4.sin_addr.s_addr = htonl(0x00000002); /* 0.0.0.2 */
	in6.sin6_addr.s6_addr[15] = 2;           /* ::2 */
	const char *where = family == AF_INET ? "0.0.0.2" : "::2";
	int rc = family == AF_INET ? connect(fd, (struct sockaddr *)&in4, sizeof(in4))
				   : connect(fd, (struct sockaddr *)&in6, sizeof(in6));
	int err = rc == 0 ? 0 : errno;
	char text[160];
	enum control_outcome outcome = UNHANDLED;
	if (err == ECONNREFUSED) {
		snprintf(text, sizeof(text), "control connect to %s:%d refused by the hook", where, port);
		outcome = HANDLED;
	} else if (err == EINPROGRESS) {
		int soerr = 0;
		socklen_t len = sizeof(soerr);
		int ready = wait_fd(fd, POLLOUT, now_ms() + CONTROL_WAIT_MS);
		if (ready == 1)
			getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len);
		snprintf(text, sizeof(text), "no connect hook: the control connect to %s:%d went out (%s)", where, port,
			 ready == 1 ? (soerr ? strerror(soerr) : "connected") : "still pending");
	} else {
		snprintf(text, sizeof(text), "no connect hook: the control connect to %s:%d %s%s", where, port,
			 err ? "failed: " : "succeeded", err ? strerror(err) : "");
	}
	buf_str(detail, text);
	close(fd);
	return outcome;
}

/* ---- commands ---- */

struct request {
	const char *command, *container, *netns, *ifname;
	struct buf ns, name, uid; /* pod fields from CNI_ARGS */
	struct buf socket;        /* kmeshSocket from the config */
};

/* Opens a conversation: sends the request line and reads the answer. -1 (logged) when the daemon is not there. */
static int ask_daemon(struct request *r, struct span *answer_obj, struct buf *answer, int *enrol, struct buf *reason)
{
	long deadline = now_ms() + DAEMON_BUDGET_MS;
	struct buf why = {0}, line = {0};
	int fd = daemon_connect(buf_cstr(&r->socket), deadline, &why);
	if (fd >= 0) {
		buf_str(&line, "{\"command\":");
		buf_json(&line, r->command);
		buf_str(&line, ",\"containerId\":");
		buf_json(&line, r->container);
		buf_str(&line, ",\"netns\":");
		buf_json(&line, r->netns);
		buf_str(&line, ",\"ifname\":");
		buf_json(&line, r->ifname);
		buf_str(&line, ",\"podNamespace\":");
		buf_json(&line, buf_cstr(&r->ns));
		buf_str(&line, ",\"podName\":");
		buf_json(&line, buf_cstr(&r->name));
		buf_str(&line, ",\"podUid\":");
		buf_json(&line, buf_cstr(&r->uid));
		buf_str(&line, "}\n");
		if (!write_all(fd, line.p, line.len, deadline))
			buf_str(&why, "sending the request failed");
		else if (!read_line(fd, answer, deadline))
			buf_str(&why, now_ms() >= deadline ? "no answer within 2 s" : "the answer was cut short or too long");
		else if (!parse_object(answer->p, answer->len, answer_obj) ||
			 (*enrol = object_bool(*answer_obj, "enrol")) < 0)
			buf_str(&why, "the answer is not {\"enrol\":true|false,...}");
		else if (object_string(*answer_obj, "reason", reason) < 0)
			buf_str(&why, "the answer's reason is not a string");
	}
	free(line.p);
	if (why.len) {
		fprintf(stderr, "kmesh-cni: %s %s/%s (container %s): daemon socket %s: %s; %s\n", r->command,
			buf_cstr(&r->ns), buf_cstr(&r->name), r->container, buf_cstr(&r->socket), why.p,
			strcmp(r->command, "ADD") ? "the daemon is not told"
						  : "the pod is not enrolled now, the daemon's pod reconciler enrols it once it runs");
		free(why.p);
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

/* The outcome line after a control connect; best effort: the daemon also checks km_manage itself. */
static void report(int fd, bool enrolled, const char *detail)
{
	struct buf line = {0};
	buf_str(&line, enrolled ? "{\"enrolled\":true,\"detail\":" : "{\"enrolled\":false,\"detail\":");
	buf_json(&line, detail);
	buf_str(&line, "}\n");
	write_all(fd, line.p, line.len, now_ms() + RESULT_BUDGET_MS);
	free(line.p);
}

/* prevResult when present: an object, or null (taken as absent); anything else is a configuration error. */
static bool has_prev_result(struct span conf, struct span *prev)
{
	if (!object_get(conf, "prevResult", prev) || (prev->n == 4 && !memcmp(prev->p, "null", 4)))
		return false;
	if (prev->p[0] != '{')
		fail(ERR_CONFIG, "prevResult is not an object", NULL);
	return true;
}

static void require_env(const char *name, const char *value)
{
	if (!*value)
		fail(ERR_ENV, "a required CNI environment variable is missing", name);
}

static void cmd_add(struct request *r, struct span conf)
{
	require_env("CNI_CONTAINERID", r->container);
	require_env("CNI_NETNS", r->netns);
	require_env("CNI_IFNAME", r->ifname);
	struct span answer_obj, prev;
	struct buf answer = {0}, reason = {0}, detail = {0};
	int enrol = 0;
	int fd = ask_daemon(r, &answer_obj, &answer, &enrol, &reason);
	if (fd >= 0) {
		if (enrol) {
			enum control_outcome o = control_connect(r->netns, ENROL_PORT, &detail);
			if (o == NETNS_GONE)
				fail(ERR_CONTAINER, "the pod's network namespace does not exist", r->netns);
			report(fd, o == HANDLED, detail.p);
			if (o != HANDLED)
				fprintf(stderr, "kmesh-cni: ADD %s/%s: not enrolled: %s\n", buf_cstr(&r->ns), buf_cstr(&r->name),
					detail.p);
		}
		close(fd);
	}
	/* The result is the previous plugin's, byte for byte; a first plugin in a chain answers an empty result. */
	if (has_prev_result(conf, &prev)) {
		fwrite(prev.p, 1, prev.n, stdout);
		fputc('\n', stdout);
	} else {
		struct buf out = {0};
		buf_str(&out, "{\"cniVersion\":");
		buf_json(&out, g_version);
		buf_str(&out, ",\"interfaces\":[],\"ips\":[],\"routes\":[],\"dns\":{}}\n");
		fputs(out.p, stdout);
	}
}

/* DEL must succeed whatever is left: a namespace already gone, a daemon that is down. */
static void cmd_del(struct request *r)
{
	require_env("CNI_CONTAINERID", r->container);
	require_env("CNI_IFNAME", r->ifname);
	struct buf detail = {0};
	enum control_outcome o = NETNS_GONE;
	if (*r->netns)
		o = control_connect(r->netns, UNENROL_PORT, &detail);
	else
		buf_str(&detail, "no network namespace given");
	if (o == NETNS_GONE)
		buf_str(&detail, " (nothing to unenrol: the namespace is gone, and its km_manage entry with it)");
	struct span answer_obj;
	struct buf answer = {0}, reason = {0};
	int enrol = 0;
	int fd = ask_daemon(r, &answer_obj, &answer, &enrol, &reason);
	if (fd >= 0) {
		report(fd, false, detail.p);
		close(fd);
	}
}

/* CHECK: the previous result is there and the namespace exists; the daemon is told, its answer changes nothing. */
static void cmd_check(struct request *r, struct span conf)
{
	struct span prev;
	require_env("CNI_CONTAINERID", r->container);
	require_env("CNI_NETNS", r->netns);
	require_env("CNI_IFNAME", r->ifname);
	if (!strcmp(g_version, "0.3.0") || !strcmp(g_version, "0.3.1"))
		fail(ERR_VERSION, "CHECK needs cniVersion 0.4.0 or later", g_version);
	if (!has_prev_result(conf, &prev))
		fail(ERR_CONFIG, "CHECK needs prevResult in the network configuration", NULL);
	if (access(r->netns, F_OK) != 0)
		fail(ERR_CONTAINER, "the pod's network namespace does not exist", r->netns);
	struct span answer_obj;
	struct buf answer = {0}, reason = {0};
	int enrol = 0;
	int fd = ask_daemon(r, &answer_obj, &answer, &enrol, &reason);
	if (fd >= 0)
		close(fd);
}

/* VERSION: the config may be just {"cniVersion":"..."}; answer in that version when we speak it. */
static void cmd_version(struct buf *in)
{
	struct span obj;
	struct buf v = {0};
	if (parse_object(buf_cstr(in), in->len, &obj) && object_string(obj, "cniVersion", &v) == 1 && supported(v.p))
		g_version = v.p;
	struct buf out = {0};
	buf_str(&out, "{\"cniVersion\":");
	buf_json(&out, g_version);
	buf_str(&out, ",\"supportedVersions\":[");
	for (size_t i = 0; i < N_SUPPORTED; i++) {
		if (i)
			buf_str(&out, ",");
		buf_json(&out, SUPPORTED[i]);
	}
	buf_str(&out, "]}\n");
	fputs(out.p, stdout);
}

int main(void)
{
	const char *command = env("CNI_COMMAND");
	struct buf in = {0}, version = {0};
	read_stdin(&in);
	if (!*command)
		fail(ERR_ENV, "a required CNI environment variable is missing", "CNI_COMMAND");
	if (!strcmp(command, "VERSION")) {
		cmd_version(&in);
		return 0;
	}

	struct span conf;
	if (!parse_object(buf_cstr(&in), in.len, &conf))
		fail(ERR_DECODE, "the network configuration on stdin is not a JSON object", NULL);
	int has_version = object_string(conf, "cniVersion", &version);
	if (has_version != 1)
		fail(ERR_CONFIG, "the network configuration has no cniVersion string", NULL);
	if (!supported(version.p))
		fail(ERR_VERSION, "unsupported cniVersion (kmesh-cni speaks 0.3.0, 0.3.1, 0.4.0 and 1.0.0)", version.p);
	g_version = version.p;

	struct request r = {.command = command,
			    .container = env("CNI_CONTAINERID"),
			    .netns = env("CNI_NETNS"),
			    .ifname = env("CNI_IFNAME")};
	int has_socket = object_string(conf, "kmeshSocket", &r.socket);
	if (has_socket < 0 || (has_socket == 1 && !r.socket.len))
		fail(ERR_CONFIG, "kmeshSocket must be a non-empty string", NULL);
	if (!has_socket)
		buf_str(&r.socket, DEFAULT_SOCKET);
	cni_arg("K8S_POD_NAMESPACE", &r.ns);
	cni_arg("K8S_POD_NAME", &r.name);
	cni_arg("K8S_POD_UID", &r.uid);

	if (!strcmp(command, "ADD"))
		cmd_add(&r, conf);
	else if (!strcmp(command, "DEL"))
		cmd_del(&r);
	else if (!strcmp(command, "CHECK"))
		cmd_check(&r, conf);
	else
		fail(ERR_ENV, "unknown CNI_COMMAND (kmesh-cni knows ADD, DEL, CHECK and VERSION)", command);
	return 0;
}
