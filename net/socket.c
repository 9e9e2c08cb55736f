/* SPDX-License-Identifier: Apache-2.0 */
/*
 * socket.c — the socket source: text lines from a TCP server, as a client
 * (Flink's socketTextStream).
 *
 * open() resolves the host and connects (non-blocking connect, bounded by
 * the conf's timeout); poll() then never blocks: it recv()s what is
 * waiting, hands complete lines to the parse function and returns 0 when
 * nothing is there. The server closing the connection ends the input.
 * Line assembly, oversized lines and bad records are core's line splitter
 * (core/sli_lines.h), as for the file line source.
 *
 * Threads: one connection per source (parallelism 1), used by the thread
 * polling it.
 */
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <sluice/sl_connectors.h>
#include <sluice/sl_error.h>

#include "sli_lines.h"

#define SOCK_BUF_INIT	     (64 * 1024)
#define SOCK_READS_POLL	     16
#define SOCK_CONNECT_TIMEOUT 10000 /* ms */

struct ssrc {
	const struct sl_socket_conf *conf;
	const struct sl_subtask_info *info;
	int fd;
	uint32_t max;
	bool eof;
	bool done;
	uint64_t lines; /* consumed so far */
	struct sli_lines sp;
	struct sli_bad bad;
	char src[320]; /* "HOST:PORT", for messages */
	char why[SLI_LINES_WHY];
};

/* --------------------------------------------------------------- URL */

int sl_socket_url_parse(const char *url, char *host, size_t hostlen, uint16_t *port, char *errbuf,
			size_t errlen)
{
	static const char scheme[] = "socket://";
	const char *h, *hend, *p;
	unsigned long v = 0;
	size_t n;

	if (url == NULL || host == NULL || hostlen == 0 || port == NULL)
		return sl_errbuf_set(errbuf, errlen, -EINVAL, "socket URL: missing argument");
	if (strncasecmp(url, scheme, sizeof(scheme) - 1) != 0)
		return sl_errbuf_set(errbuf, errlen, -EINVAL,
				     "'%s' is not a socket URL: expected socket://HOST:PORT", url);
	h = url + sizeof(scheme) - 1;
	if (h[0] == '[') {
		hend = strchr(h, ']');
		if (hend == NULL)
			return sl_errbuf_set(errbuf, errlen, -EINVAL,
					     "'%s': missing ']' after the IPv6 address", url);
		h++;
		p = hend + 1;
		if (*p != ':')
			return sl_errbuf_set(errbuf, errlen, -EINVAL,
					     "'%s': missing port (expected socket://HOST:PORT)",
					     url);
	} else {
		p = strrchr(h, ':');
		if (p == NULL)
			return sl_errbuf_set(errbuf, errlen, -EINVAL,
					     "'%s': missing port (expected socket://HOST:PORT)",
					     url);
		hend = p;
		if (memchr(h, ':', (size_t)(hend - h)) != NULL)
			return sl_errbuf_set(errbuf, errlen, -EINVAL,
					     "'%s': write IPv6 addresses in brackets, as "
					     "socket://[::1]:PORT",
					     url);
	}
	n = (size_t)(hend - h);
	if (n == 0)
		return sl_errbuf_set(errbuf, errlen, -EINVAL, "'%s': empty host", url);
	if (n >= hostlen)
		return sl_errbuf_set(errbuf, errlen, -EINVAL, "'%s': host name too long", url);
	p++; /* past ':' */
	if (*p == '\0')
		return sl_errbuf_set(errbuf, errlen, -EINVAL,
				     "'%s': missing port (expected socket://HOST:PORT)", url);
	for (const char *d = p; *d != '\0'; d++) {
		if (*d < '0' || *d > '9' || v > 65535) {
			v = 0;
			break;
		}
		v = v * 10 + (unsigned long)(*d - '0');
	}
	if (v == 0 || v > 65535)
		return sl_errbuf_set(errbuf, errlen, -EINVAL,
				     "'%s': port '%s' is not a number from 1 to 65535", url, p);
	memcpy(host, h, n);
	host[n] = '\0';
	*port = (uint16_t)v;
	return 0;
}

/* ----------------------------------------------------------- connect */

static int64_t now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* Connect one address within the deadline. Return the fd or -errno. */
static int connect_one(const struct addrinfo *ai, int64_t deadline)
{
	int fd, err = 0;
	socklen_t elen = sizeof(err);

	fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
	if (fd < 0)
		return -errno;
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
		return fd;
	if (errno != EINPROGRESS) {
		err = errno;
		close(fd);
		return -err;
	}
	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = POLLOUT };
		int64_t left = deadline - now_ms();
		int rc;

		if (left <= 0) {
			close(fd);
			return -ETIMEDOUT;
		}
		rc = poll(&pfd, 1, left > 60000 ? 60000 : (int)left);
		if (rc < 0 && errno == EINTR)
			continue;
		if (rc < 0) {
			err = errno;
			close(fd);
			return -err;
		}
		if (rc > 0)
			break;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) < 0)
		err = errno;
	if (err != 0) {
		close(fd);
		return -err;
	}
	return fd;
}

static int gai_errno(int rc)
{
	switch (rc) {
	case EAI_SYSTEM:
		return errno ? -errno : -EIO;
	case EAI_AGAIN:
		return -EAGAIN;
	case EAI_MEMORY:
		return -ENOMEM;
	default:
		return -EHOSTUNREACH;
	}
}

static int sock_connect(struct ssrc *s)
{
	const struct sl_socket_conf *conf = s->conf;
	const struct sl_subtask_info *info = s->info;
	struct addrinfo hints = { 0 }, *res, *ai;
	unsigned tmo = conf->connect_timeout_ms ? conf->connect_timeout_ms : SOCK_CONNECT_TIMEOUT;
	int64_t deadline = now_ms() + tmo;
	char port[8];
	int rc, fd = -ECONNREFUSED;

	snprintf(port, sizeof(port), "%u", conf->port);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	errno = 0;
	rc = getaddrinfo(conf->host, port, &hints, &res);
	if (rc != 0) {
		const char *why = rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc);

		return sl_errbuf_set(info->errbuf, info->errlen, gai_errno(rc),
				     "cannot connect to %s: %s", s->src, why);
	}
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		fd = connect_one(ai, deadline);
		if (fd >= 0)
			break;
	}
	freeaddrinfo(res);
	if (fd < 0)
		return sl_errbuf_set(info->errbuf, info->errlen, fd, "cannot connect to %s: %s",
				     s->src, sl_strerror(fd));
	s->fd = fd;
	return 0;
}

/* ------------------------------------------------------------ source */

static void sock_close(void *state)
{
	struct ssrc *s = state;

	if (s == NULL)
		return;
	if (s->fd >= 0)
		close(s->fd);
	sli_lines_fini(&s->sp);
	sli_bad_close(&s->bad);
	sli_conn_free(s);
}

static int sock_open(void *arg, const struct sl_subtask_info *info, void **state)
{
	const struct sl_socket_conf *conf = arg;
	struct ssrc *s;
	int rc;

	if (info == NULL || state == NULL)
		return -EINVAL;
	if (conf == NULL || conf->host == NULL || conf->host[0] == '\0' || conf->parse == NULL)
		return sl_errbuf_set(info->errbuf, info->errlen, -EINVAL,
				     "socket source: the configuration needs a host and a parse "
				     "function");
	if (conf->port == 0)
		return sl_errbuf_set(info->errbuf, info->errlen, -EINVAL,
				     "socket source: port must be 1..65535");
	if (info->parallelism != 1)
		return sl_errbuf_set(info->errbuf, info->errlen, -EINVAL,
				     "socket source: one connection cannot be split: set the "
				     "source's parallelism to 1 (it is %u)",
				     info->parallelism);
	s = sli_conn_zalloc(sizeof(*s));
	if (s == NULL)
		return sl_errbuf_set(info->errbuf, info->errlen, -ENOMEM,
				     "socket source: out of memory");
	s->conf = conf;
	s->info = info;
	s->fd = -1;
	s->max = sli_conn_max_record(conf->max_record_size, info);
	if (strchr(conf->host, ':') != NULL)
		snprintf(s->src, sizeof(s->src), "[%.256s]:%u", conf->host, conf->port);
	else
		snprintf(s->src, sizeof(s->src), "%.256s:%u", conf->host, conf->port);
	rc = sli_bad_open(&s->bad, conf->bad_policy, conf->bad_path, info->errbuf, info->errlen);
	if (rc < 0)
		goto fail;
	rc = sli_lines_init(&s->sp, s->max, SOCK_BUF_INIT);
	if (rc < 0) {
		sl_errbuf_set(info->errbuf, info->errlen, rc, "socket source: out of memory");
		goto fail;
	}
	rc = sock_connect(s);
	if (rc < 0)
		goto fail;
	*state = s;
	return 0;
fail:
	sock_close(s);
	return rc;
}

/* recv() once. Return 1 on progress (data or EOF), 0 when nothing is waiting, or -errno. */
static int sock_fill(struct ssrc *s)
{
	size_t len;
	ssize_t n;
	char *p;
	int rc;

	rc = sli_lines_space(&s->sp, &p, &len);
	if (rc < 0)
		return sl_errbuf_set(s->info->errbuf, s->info->errlen, rc,
				     "socket source %s: out of memory", s->src);
	do {
		n = recv(s->fd, p, len, MSG_DONTWAIT);
	} while (n < 0 && errno == EINTR);
	if (n < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return 0;
		return sl_errbuf_set(s->info->errbuf, s->info->errlen, -errno,
				     "read error from %s: %s", s->src, strerror(errno));
	}
	if (n == 0)
		s->eof = true;
	else
		sli_lines_commit(&s->sp, (size_t)n);
	return 1;
}

static int sock_poll(void *state, struct sl_batch *out)
{
	struct ssrc *s = state;
	const struct sl_subtask_info *info = s->info;
	int budget = SOCK_READS_POLL;
	uint32_t n0 = out->n;
	struct sli_line line;
	int rc;

	while (!s->done && out->n < out->cap) {
		if (!sli_lines_peek(&s->sp, s->eof, &line)) {
			if (s->eof) {
				s->done = true;
				break;
			}
			if (budget-- == 0)
				break;
			rc = sock_fill(s);
			if (rc < 0)
				return rc;
			if (rc == 0)
				break;
			continue;
		}
		rc = sli_lines_parse(&line, out, s->max, s->conf->parse, s->conf->arg, s->why);
		if (rc == SLI_LINE_FULL)
			break;
		if (rc < 0)
			return sl_errbuf_set(info->errbuf, info->errlen, rc, "%s:%" PRIu64 ": %s",
					     s->src, s->lines + 1,
					     s->why[0] ? s->why : sl_strerror(rc));
		if (rc == SLI_LINE_BAD) {
			rc = sli_bad_record(&s->bad, info, s->src, s->lines + 1, s->why, line.ptr,
					    line.len, line.oversized);
			if (rc < 0)
				return rc;
		}
		sli_lines_consume(&s->sp);
		s->lines++;
	}
	return (int)(out->n - n0) | (s->done ? SL_SOURCE_END : 0);
}

const struct sl_source_ops sl_socket_ops = {
	.open = sock_open,
	.poll = sock_poll,
	.close = sock_close,
};
