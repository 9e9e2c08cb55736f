/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_socket.c — the socket source against a server thread on 127.0.0.1,
 * and the socket URL parser.
 *
 * The server sends chunks cut in the middle of lines (and of "\r\n"),
 * pausing between them, then closes; the expected lines are written out
 * by hand or built from the list the test generated, never taken from
 * the source.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <sluice/sl_connectors.h>

#include "sl_test.h"

/* ------------------------------------------------------------ server */

struct server {
	int lfd;
	uint16_t port;
	const char *const *chunks; /* sent in order, then the connection is closed */
	const size_t *lens;	   /* NULL: strlen */
	size_t nchunks;
	atomic_int go; /* the server sends nothing until this is 1 */
	int rc;
	pthread_t th;
};

static void pause_ms(long ms)
{
	struct timespec t = { ms / 1000, (ms % 1000) * 1000000 };

	nanosleep(&t, NULL);
}

static void *server_main(void *p)
{
	struct server *s = p;
	int one = 1, fd;

	fd = accept(s->lfd, NULL, NULL);
	if (fd < 0) {
		s->rc = -errno;
		return NULL;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	while (!atomic_load_explicit(&s->go, memory_order_acquire)) /* pairs with server_go() */
		pause_ms(1);
	for (size_t i = 0; i < s->nchunks; i++) {
		size_t len = s->lens ? s->lens[i] : strlen(s->chunks[i]);
		const char *c = s->chunks[i];

		while (len > 0) {
			ssize_t n = send(fd, c, len, MSG_NOSIGNAL);

			if (n < 0) {
				s->rc = -errno;
				close(fd);
				return NULL;
			}
			c += n;
			len -= (size_t)n;
		}
		pause_ms(2); /* let the reader see a partial line */
	}
	close(fd);
	return NULL;
}

static void server_start(struct server *s, const char *const *chunks, const size_t *lens, size_t n,
			 bool go)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t alen = sizeof(a);

	memset(s, 0, sizeof(*s));
	s->chunks = chunks;
	s->lens = lens;
	s->nchunks = n;
	atomic_store_explicit(&s->go, go, memory_order_relaxed);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	s->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	CU_ASSERT_FATAL(s->lfd >= 0);
	CU_ASSERT_FATAL(bind(s->lfd, (struct sockaddr *)&a, sizeof(a)) == 0);
	CU_ASSERT_FATAL(listen(s->lfd, 1) == 0);
	CU_ASSERT_FATAL(getsockname(s->lfd, (struct sockaddr *)&a, &alen) == 0);
	s->port = ntohs(a.sin_port);
	CU_ASSERT_FATAL(pthread_create(&s->th, NULL, server_main, s) == 0);
}

static void server_go(struct server *s)
{
	atomic_store_explicit(&s->go, 1, memory_order_release);
}

static void server_stop(struct server *s)
{
	server_go(s);
	pthread_join(s->th, NULL);
	close(s->lfd);
	CU_ASSERT(s->rc == 0);
}

/* ------------------------------------------------------------ source */

struct run {
	struct sl_subtask_info info;
	struct sl_counters counters;
	char err[512];
};

static void run_init(struct run *r, unsigned p, uint32_t max_record)
{
	memset(r, 0, sizeof(*r));
	r->info.op_name = "socket";
	r->info.parallelism = p;
	r->info.max_parallelism = 128;
	r->info.pu = -1;
	r->info.max_record_size = max_record;
	r->info.counters = &r->counters;
	r->info.errbuf = r->err;
	r->info.errlen = sizeof(r->err);
}

struct lines {
	char **v;
	size_t n, cap;
};

static void lines_add(struct lines *l, const char *p, size_t len)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 64;
		l->v = realloc(l->v, l->cap * sizeof(*l->v));
	}
	l->v[l->n] = strndup(p, len);
	l->n++;
}

static void lines_free(struct lines *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	memset(l, 0, sizeof(*l));
}

/* Poll an open source to its end (sleeping on 0); return 0 or its error. */
static int drain(void *st, struct lines *out, uint32_t cap)
{
	struct sl_batch *b;
	int rc;

	CU_ASSERT_FATAL(sl_batch_create(NULL, cap, sizeof(struct sl_line), 1 << 20, &b) == 0);
	for (;;) {
		sl_batch_clear(b);
		rc = sl_socket_ops.poll(st, b);
		if (rc < 0)
			break;
		CU_ASSERT((uint32_t)(rc & ~SL_SOURCE_END) == b->n);
		for (uint32_t i = 0; i < b->n; i++) {
			const struct sl_line *e = sl_batch_elem(b, i);

			lines_add(out, sl_batch_str(b, e->text), e->text.len);
		}
		if (rc & SL_SOURCE_END) {
			rc = 0;
			break;
		}
		if (b->n == 0)
			pause_ms(1);
	}
	sl_batch_destroy(b);
	return rc;
}

static int parse_bang(const char *line, size_t len, struct sl_batch *out, void *elem, int64_t *ts,
		      char *why, size_t whylen, void *arg)
{
	if (line[0] == '!') {
		snprintf(why, whylen, "line starts with '!'");
		return -EINVAL;
	}
	return sl_lines_parse_line(line, len, out, elem, ts, why, whylen, arg);
}

static void test_socket_lines(void)
{
	static const char *const chunks[] = {
		"hel",	      "lo\nwor",	  "ld\r", "\n",
		"\n\nthird ", "line\r\nfourth\n", "fi",	  "fth, no newline",
	};
	static const char *const want[] = { "hello", "world", "third line", "fourth",
					    "fifth, no newline" };
	struct server srv;
	struct sl_socket_conf conf = { .host = "127.0.0.1", .parse = sl_lines_parse_line };
	struct lines got = { 0 };
	struct sl_batch *b;
	struct run r;
	void *st;

	server_start(&srv, chunks, NULL, SL_ARRAY_SIZE(chunks), false);
	conf.port = srv.port;
	run_init(&r, 1, 1 << 20);
	CU_ASSERT_FATAL(sl_socket_ops.open(&conf, &r.info, &st) == 0);
	/* Connected, nothing sent yet: poll returns 0 at once, it does not block. */
	CU_ASSERT_FATAL(sl_batch_create(NULL, 4, sizeof(struct sl_line), 1 << 20, &b) == 0);
	CU_ASSERT(sl_socket_ops.poll(st, b) == 0);
	CU_ASSERT(sl_socket_ops.poll(st, b) == 0);
	sl_batch_destroy(b);
	server_go(&srv);
	CU_ASSERT(drain(st, &got, 2) == 0);
	sl_socket_ops.close(st);
	server_stop(&srv);
	CU_ASSERT_FATAL(got.n == SL_ARRAY_SIZE(want));
	for (size_t i = 0; i < got.n; i++)
		CU_ASSERT_STRING_EQUAL(got.v[i], want[i]);
	lines_free(&got);
}

/* Many lines in random chunks: each line arrives once, in order. */
static void test_socket_bulk(void)
{
	enum { NLINES = 20000 };
	char *data = malloc(NLINES * 40), **chunks;
	size_t len = 0, *lens, nchunks = 0, off = 0;
	uint64_t x = 12345;
	struct server srv;
	struct sl_socket_conf conf = { .host = "localhost", .parse = sl_lines_parse_line };
	struct lines got = { 0 };
	struct run r;
	void *st;

	for (unsigned i = 0; i < NLINES; i++)
		len += (size_t)sprintf(data + len, "line %u %s\n", i, i % 3 ? "x" : "yy\r");
	chunks = calloc(len, sizeof(*chunks));
	lens = calloc(len, sizeof(*lens));
	while (off < len) {
		size_t n;

		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		n = 1 + x % 65536;
		if (n > len - off)
			n = len - off;
		chunks[nchunks] = data + off;
		lens[nchunks++] = n;
		off += n;
	}
	server_start(&srv, (const char *const *)chunks, lens, nchunks, true);
	conf.port = srv.port;
	run_init(&r, 1, 1 << 20);
	if (sl_socket_ops.open(&conf, &r.info, &st) != 0) {
		/* "localhost" may resolve to ::1 first; the source tries every address. */
		fprintf(stderr, "  open: %s\n", r.err);
		CU_FAIL("open localhost");
	} else {
		CU_ASSERT(drain(st, &got, 256) == 0);
		sl_socket_ops.close(st);
	}
	server_stop(&srv);
	CU_ASSERT_FATAL(got.n == NLINES);
	for (unsigned i = 0; i < NLINES; i++) {
		char want[32];

		snprintf(want, sizeof(want), "line %u %s", i, i % 3 ? "x" : "yy");
		CU_ASSERT(strcmp(got.v[i], want) == 0);
	}
	lines_free(&got);
	free(chunks);
	free(lens);
	free(data);
}

static void test_socket_bad_records(void)
{
	static const char *const chunks[] = {
		"ok\n!bad one\r\n",
		"\n",
		"0123456789012345678901234567890123456789",
		"0123\nlast\n",
	};
	static const char *const chunks2[] = { "a\n\n!x", "y\nb\n" };
	const char *dead = "/tmp/sl-test-socket-dead.txt";
	struct server srv;
	struct sl_socket_conf conf = { .host = "127.0.0.1",
				       .parse = parse_bang,
				       .bad_policy = SL_BAD_FILE,
				       .bad_path = dead,
				       .max_record_size = 40 };
	struct lines got = { 0 };
	char want[512], content[512];
	struct run r;
	FILE *f;
	size_t n;
	void *st;

	unlink(dead);
	server_start(&srv, chunks, NULL, SL_ARRAY_SIZE(chunks), true);
	conf.port = srv.port;
	run_init(&r, 1, 1 << 20);
	CU_ASSERT_FATAL(sl_socket_ops.open(&conf, &r.info, &st) == 0);
	CU_ASSERT(drain(st, &got, 8) == 0);
	sl_socket_ops.close(st);
	server_stop(&srv);
	CU_ASSERT(got.n == 2 && strcmp(got.v[0], "ok") == 0 && strcmp(got.v[1], "last") == 0);
	CU_ASSERT(atomic_load(&r.counters.bad_records) == 2);
	snprintf(want, sizeof(want),
		 "127.0.0.1:%u:2: line starts with '!': !bad one\n"
		 "127.0.0.1:%u:4: record longer than 40 bytes: "
		 "0123456789012345678901234567890123456789 [truncated]\n",
		 srv.port, srv.port);
	f = fopen(dead, "r");
	CU_ASSERT_FATAL(f != NULL);
	n = fread(content, 1, sizeof(content) - 1, f);
	content[n] = '\0';
	fclose(f);
	CU_ASSERT_STRING_EQUAL(content, want);
	unlink(dead);
	lines_free(&got);

	/* FAIL: the error names HOST:PORT:LINE. */
	server_start(&srv, chunks2, NULL, SL_ARRAY_SIZE(chunks2), true);
	conf.port = srv.port;
	conf.bad_policy = SL_BAD_FAIL;
	conf.bad_path = NULL;
	run_init(&r, 1, 1 << 20);
	CU_ASSERT_FATAL(sl_socket_ops.open(&conf, &r.info, &st) == 0);
	CU_ASSERT(drain(st, &got, 8) == -EINVAL);
	snprintf(want, sizeof(want), "127.0.0.1:%u:3: line starts with '!'", srv.port);
	CU_ASSERT_STRING_EQUAL(r.err, want);
	sl_socket_ops.close(st);
	server_stop(&srv);
	lines_free(&got);
}

static void test_socket_errors(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t alen = sizeof(a);
	struct sl_socket_conf conf = { .host = "127.0.0.1", .parse = sl_lines_parse_line };
	char want[128];
	struct run r;
	void *st;
	int fd;

	/* A port nobody listens on: bound, then closed. */
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT_FATAL(bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0);
	CU_ASSERT_FATAL(getsockname(fd, (struct sockaddr *)&a, &alen) == 0);
	close(fd);
	conf.port = ntohs(a.sin_port);
	run_init(&r, 1, 1 << 20);
	CU_ASSERT(sl_socket_ops.open(&conf, &r.info, &st) == -ECONNREFUSED);
	snprintf(want, sizeof(want), "cannot connect to 127.0.0.1:%u: Connection refused",
		 conf.port);
	CU_ASSERT_STRING_EQUAL(r.err, want);

	/* A name that does not resolve (.invalid is reserved). */
	conf.host = "nonexistent.invalid";
	CU_ASSERT(sl_socket_ops.open(&conf, &r.info, &st) < 0);
	snprintf(want, sizeof(want), "cannot connect to nonexistent.invalid:%u: ", conf.port);
	CU_ASSERT(strncmp(r.err, want, strlen(want)) == 0);

	/* Configuration errors. */
	conf.host = "127.0.0.1";
	run_init(&r, 2, 1 << 20);
	CU_ASSERT(sl_socket_ops.open(&conf, &r.info, &st) == -EINVAL);
	CU_ASSERT(strstr(r.err, "parallelism to 1 (it is 2)") != NULL);
	run_init(&r, 1, 1 << 20);
	conf.port = 0;
	CU_ASSERT(sl_socket_ops.open(&conf, &r.info, &st) == -EINVAL);
	conf.port = 9;
	conf.host = "";
	CU_ASSERT(sl_socket_ops.open(&conf, &r.info, &st) == -EINVAL);
	conf.host = "127.0.0.1";
	conf.parse = NULL;
	CU_ASSERT(sl_socket_ops.open(&conf, &r.info, &st) == -EINVAL);
	CU_ASSERT(sl_socket_ops.open(NULL, &r.info, &st) == -EINVAL);
	conf.parse = sl_lines_parse_line;
	conf.bad_policy = SL_BAD_FILE;
	CU_ASSERT(sl_socket_ops.open(&conf, &r.info, &st) == -EINVAL);
}

static void test_socket_url(void)
{
	static const struct {
		const char *url;
		const char *host;
		uint16_t port;
	} good[] = {
		{ "socket://localhost:9999", "localhost", 9999 },
		{ "socket://127.0.0.1:1", "127.0.0.1", 1 },
		{ "SOCKET://h:65535", "h", 65535 },
		{ "socket://[::1]:8080", "::1", 8080 },
		{ "socket://example.com:080", "example.com", 80 },
	};
	static const struct {
		const char *url;
		const char *why; /* a part of the message */
	} bad[] = {
		{ "socket://localhost", "missing port" },
		{ "socket://localhost:", "missing port" },
		{ "socket://[::1]", "missing port" },
		{ "socket://[::1]x80", "missing port" },
		{ "socket://:80", "empty host" },
		{ "socket://[]:80", "empty host" },
		{ "socket://h:0", "port '0'" },
		{ "socket://h:65536", "port '65536'" },
		{ "socket://h:99999999999999999999", "is not a number" },
		{ "socket://h:12ab", "port '12ab'" },
		{ "socket://h:-1", "port '-1'" },
		{ "socket://h: 80", "is not a number" },
		{ "http://h:80", "not a socket URL" },
		{ "h:80", "not a socket URL" },
		{ "", "not a socket URL" },
		{ "socket://[::1:80", "missing ']'" },
		{ "socket://::1:80", "brackets" },
	};
	char host[64], err[256];
	uint16_t port;

	for (size_t i = 0; i < SL_ARRAY_SIZE(good); i++) {
		err[0] = '\0';
		CU_ASSERT(sl_socket_url_parse(good[i].url, host, sizeof(host), &port, err,
					      sizeof(err)) == 0);
		CU_ASSERT_STRING_EQUAL(host, good[i].host);
		CU_ASSERT(port == good[i].port);
	}
	for (size_t i = 0; i < SL_ARRAY_SIZE(bad); i++) {
		err[0] = '\0';
		CU_ASSERT(sl_socket_url_parse(bad[i].url, host, sizeof(host), &port, err,
					      sizeof(err)) == -EINVAL);
		if (strstr(err, bad[i].why) == NULL) {
			fprintf(stderr, "  '%s': got '%s'\n", bad[i].url, err);
			CU_FAIL("URL error message");
		}
	}
	CU_ASSERT(sl_socket_url_parse("socket://averylonghostname:1", host, 8, &port, err,
				      sizeof(err)) == -EINVAL);
	CU_ASSERT(strstr(err, "too long") != NULL);
	CU_ASSERT(sl_socket_url_parse(NULL, host, sizeof(host), &port, err, sizeof(err)) ==
		  -EINVAL);
}

int main(void)
{
	CU_TestInfo tests[] = {
		{ "lines split across sends, non-blocking", test_socket_lines },
		{ "20000 lines in random chunks", test_socket_bulk },
		{ "bad records: dead letters, FAIL", test_socket_bad_records },
		{ "refused, unresolvable, config errors", test_socket_errors },
		{ "URL parsing", test_socket_url },
		CU_TEST_INFO_NULL,
	};

	return sl_test_main("socket", tests);
}
