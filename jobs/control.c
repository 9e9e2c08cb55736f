/* SPDX-License-Identifier: Apache-2.0 */
/*
 * control.c — the control socket of `sluice run` and its client, for
 * `sluice savepoint`.
 *
 * A job run with checkpoints (or --control PATH) listens on a Unix
 * stream socket: PATH, or by default $XDG_RUNTIME_DIR/sluice/PID.sock,
 * or /tmp/sluice-UID/PID.sock when XDG_RUNTIME_DIR is unset (the
 * directory created with mode 0700 and refused when someone else owns it
 * or others may enter it). The socket file is removed when the run ends;
 * sockets left there by jobs killed with -9 are removed by the next start.
 *
 * Protocol: one request line per connection, one reply line, then the
 * server closes the connection.
 *	savepoint [DIR]\n	-> ok PATH\n | error MESSAGE\n
 *	status\n		-> {"job":...,"running":0|1,"records_in":N,
 *				    "records_out":N,"restarts":N,
 *				    "last_savepoint":PATH|null,"checkpoints":
 *				    {"completed":N,"failed":N,"last_id":N,
 *				     "last_bytes":N,"last_duration_ms":X,
 *				     "max_pause_ms":X,"restored_id":N,
 *				     "cow_task_bytes":N,"cow_retired":N}|null}\n
 * (checkpoints: sl_job_checkpoint_stats(), null without a checkpoint dir;
 * savepoints count as completed checkpoints).
 * DIR (no spaces at its ends; relative to the job's working directory)
 * defaults to the job's savepoint-dir option. A savepoint request blocks
 * until the savepoint is complete or failed (sl_job_savepoint()).
 *
 * Threads: one control thread serves connections one at a time; it runs
 * with SIGINT and SIGTERM blocked (the watch thread of runner.c takes
 * them). sli_control_start() and sli_control_stop() on the main thread;
 * stop wakes the thread through a pipe and joins it.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <sluice/sl_error.h>
#include <sluice/sl_job.h>
#include <sluice/sl_log.h>

#include "jobs.h"

#define LINE_MAX_LEN   4096
#define CLIENT_WAIT_MS 5000 /* a client that sends no full line in this time is dropped */

struct sli_control {
	struct sl_job *job;
	const char *name; /* the job's, for status */
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	int lfd;
	int wake[2]; /* stop writes a byte into wake[1] */
	pthread_t thread;
};

int sli_control_default_path(long pid, char *buf, size_t len)
{
	const char *xdg = getenv("XDG_RUNTIME_DIR");
	int n;

	if (xdg != NULL && xdg[0] != '\0')
		n = snprintf(buf, len, "%s/sluice/%ld.sock", xdg, pid);
	else
		n = snprintf(buf, len, "/tmp/sluice-%ld/%ld.sock", (long)getuid(), pid);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

static int fill_addr(struct sockaddr_un *a, const char *path);

/*
 * Remove the sockets of jobs that died without removing theirs (kill -9)
 * from the default directory @dir: "PID.sock" whose process is gone and
 * on which nobody accepts (both, so a job in another PID namespace that
 * shares the directory keeps its socket).
 */
static void sweep_stale(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;

	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		char full[PATH_MAX + 256], *end;
		struct sockaddr_un a;
		long pid = strtol(de->d_name, &end, 10);
		int fd;

		if (end == de->d_name || strcmp(end, ".sock") != 0 || pid <= 0 ||
		    kill((pid_t)pid, 0) == 0 || errno != ESRCH)
			continue;
		snprintf(full, sizeof(full), "%s/%s", dir, de->d_name);
		if (fill_addr(&a, full) < 0)
			continue;
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0 &&
		    errno == ECONNREFUSED)
			unlink(full);
		if (fd >= 0)
			close(fd);
	}
	closedir(d);
}

/* Create the default socket's directory (mode 0700), or check the one there is ours alone. */
static int make_private_dir(const char *sock, char *errbuf, size_t errlen)
{
	char dir[PATH_MAX];
	struct stat sb;
	char *slash;

	snprintf(dir, sizeof(dir), "%s", sock);
	slash = strrchr(dir, '/');
	if (slash == NULL || slash == dir)
		return 0;
	*slash = '\0';
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return sl_errbuf_set(errbuf, errlen, -errno,
				     "cannot create control socket directory '%s': %s", dir,
				     strerror(errno));
	if (lstat(dir, &sb) < 0)
		return sl_errbuf_set(errbuf, errlen, -errno, "control socket directory '%s': %s",
				     dir, strerror(errno));
	if (!S_ISDIR(sb.st_mode) || sb.st_uid != getuid() || (sb.st_mode & 077) != 0)
		return sl_errbuf_set(errbuf, errlen, -EPERM,
				     "control socket directory '%s' is not a directory of this "
				     "user's with mode 0700",
				     dir);
	sweep_stale(dir);
	return 0;
}

static int fill_addr(struct sockaddr_un *a, const char *path)
{
	memset(a, 0, sizeof(*a));
	a->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(a->sun_path))
		return -ENAMETOOLONG;
	memcpy(a->sun_path, path, strlen(path) + 1);
	return 0;
}

/*
 * Bind @fd to @path and listen: refused when a process accepts on @path;
 * a stale socket file (nobody accepts on it) is replaced. The socket is
 * bound under a temporary name and renamed to @path once it listens, so a
 * client that sees @path can connect.
 */
static int bind_listen(int fd, const char *path, char *errbuf, size_t errlen)
{
	struct sockaddr_un a, tmp;
	char tname[sizeof(a.sun_path) + 32];
	int probe, rc = 0;

	snprintf(tname, sizeof(tname), "%s.%ld.tmp", path, (long)getpid());
	if (fill_addr(&a, path) < 0 || fill_addr(&tmp, tname) < 0)
		return sl_errbuf_set(errbuf, errlen, -ENAMETOOLONG,
				     "control socket path '%s' is too long (at most %zu bytes)",
				     path, sizeof(a.sun_path) - 24);
	probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (probe >= 0 && connect(probe, (struct sockaddr *)&a, sizeof(a)) == 0)
		rc = sl_errbuf_set(errbuf, errlen, -EADDRINUSE,
				   "control socket '%s' is in use by another process", path);
	if (probe >= 0)
		close(probe);
	if (rc < 0)
		return rc;
	unlink(tname);
	if (bind(fd, (struct sockaddr *)&tmp, sizeof(tmp)) < 0 || listen(fd, 8) < 0 ||
	    rename(tname, path) < 0) {
		rc = -errno;
		unlink(tname);
		return sl_errbuf_set(errbuf, errlen, rc, "cannot listen on control socket '%s': %s",
				     path, strerror(-rc));
	}
	return 0;
}

/*
 * Read one line (without its '\n') from @fd into @buf, waiting at most
 * CLIENT_WAIT_MS and never past a stop. Return its length or -errno.
 */
static int read_line(int fd, int wake, char *buf, size_t len)
{
	size_t n = 0;

	while (n + 1 < len) {
		struct pollfd p[2] = { { fd, POLLIN, 0 }, { wake, POLLIN, 0 } };
		int r = poll(p, wake >= 0 ? 2 : 1, wake >= 0 ? CLIENT_WAIT_MS : -1);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			return -ETIMEDOUT;
		if (wake >= 0 && p[1].revents)
			return -ECANCELED;
		ssize_t k = read(fd, buf + n, 1);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return -errno;
		if (k == 0)
			break;
		if (buf[n] == '\n')
			break;
		n++;
	}
	buf[n] = '\0';
	return n + 1 < len ? (int)n : -EMSGSIZE;
}

static void write_all(int fd, const char *s, size_t len)
{
	while (len > 0) {
		ssize_t k = send(fd, s, len, MSG_NOSIGNAL);

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return; /* the client went away: nothing to tell it */
		s += k;
		len -= (size_t)k;
	}
}

static void reply_status(struct sli_control *c, int fd)
{
	char buf[LINE_MAX_LEN + PATH_MAX], last[PATH_MAX];
	struct sl_job_stats st;
	struct sl_checkpoint_stats cs;
	FILE *f = fmemopen(buf, sizeof(buf), "w");

	if (f == NULL) {
		write_all(fd, "error out of memory\n", 20);
		return;
	}
	sl_job_stats(c->job, &st);
	fputs("{\"job\":", f);
	sl_fput_json_str(f, c->name);
	fprintf(f,
		",\"running\":%u,\"records_in\":%" PRIu64 ",\"records_out\":%" PRIu64
		",\"restarts\":%" PRIu64 ",\"last_savepoint\":",
		st.running, st.source_records, st.sink_records, (uint64_t)st.restarts);
	if (sl_job_last_savepoint(c->job, last, sizeof(last)) == 0)
		sl_fput_json_str(f, last);
	else
		fputs("null", f);
	fputs(",\"checkpoints\":", f);
	if (sl_job_checkpoint_stats(c->job, &cs) == 0 && cs.enabled)
		fprintf(f,
			"{\"completed\":%" PRIu64 ",\"failed\":%" PRIu64 ",\"last_id\":%" PRId64
			",\"last_bytes\":%" PRIu64 ",\"last_duration_ms\":%.3f"
			",\"max_pause_ms\":%.3f,\"restored_id\":%" PRId64
			",\"cow_task_bytes\":%" PRIu64 ",\"cow_retired\":%" PRIu64 "}",
			cs.completed, cs.failed, cs.last_id, cs.last_bytes,
			(double)cs.last_duration_ns / 1e6, (double)cs.max_pause_ns / 1e6,
			cs.restored_id, cs.cow_task_bytes, cs.cow_retired);
	else
		fputs("null", f);
	fputs("}\n", f);
	fflush(f);
	write_all(fd, buf, strlen(buf));
	fclose(f);
}

static void serve(struct sli_control *c, int fd)
{
	char line[LINE_MAX_LEN], path[PATH_MAX], err[1024], out[PATH_MAX + 1100];
	int n = read_line(fd, c->wake[0], line, sizeof(line));

	if (n < 0)
		return;
	if (strcmp(line, "status") == 0) {
		reply_status(c, fd);
		return;
	}
	if (strcmp(line, "savepoint") == 0 || strncmp(line, "savepoint ", 10) == 0) {
		const char *dir = line[9] == ' ' && line[10] != '\0' ? line + 10 : NULL;
		int rc;

		err[0] = '\0';
		rc = sl_job_savepoint(c->job, dir, path, sizeof(path), err, sizeof(err));
		if (rc == 0)
			snprintf(out, sizeof(out), "ok %s\n", path);
		else
			snprintf(out, sizeof(out), "error %s\n", err[0] ? err : sl_strerror(rc));
		write_all(fd, out, strlen(out));
		return;
	}
	snprintf(out, sizeof(out),
		 "error unknown request '%.64s' (expected 'savepoint [DIR]' or 'status')\n", line);
	write_all(fd, out, strlen(out));
}

static void *control_main(void *arg)
{
	struct sli_control *c = arg;
	sigset_t block;

	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &block, NULL);
	for (;;) {
		struct pollfd p[2] = { { c->lfd, POLLIN, 0 }, { c->wake[0], POLLIN, 0 } };
		int fd;

		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p[1].revents)
			break;
		fd = accept4(c->lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			continue;
		serve(c, fd);
		close(fd);
	}
	return NULL;
}

int sli_control_start(struct sl_job *job, const char *name, const char *path,
		      struct sli_control **out, char *errbuf, size_t errlen)
{
	struct sli_control *c = calloc(1, sizeof(*c));
	int rc;

	*out = NULL;
	if (c == NULL)
		return sl_errbuf_set(errbuf, errlen, -ENOMEM, "out of memory");
	c->job = job;
	c->name = name;
	c->lfd = c->wake[0] = c->wake[1] = -1;
	if (path != NULL)
		rc = snprintf(c->path, sizeof(c->path), "%s", path) < (int)sizeof(c->path)
			 ? 0
			 : -ENAMETOOLONG;
	else
		rc = sli_control_default_path((long)getpid(), c->path, sizeof(c->path));
	if (rc < 0) {
		sl_errbuf_set(errbuf, errlen, rc, "control socket path '%s...' is too long",
			      path ? path : c->path);
		goto fail;
	}
	if (path == NULL) {
		rc = make_private_dir(c->path, errbuf, errlen);
		if (rc < 0)
			goto fail;
	}
	c->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->lfd < 0 || pipe2(c->wake, O_CLOEXEC) < 0) {
		rc = sl_errbuf_set(errbuf, errlen, -errno, "cannot create the control socket: %s",
				   strerror(errno));
		goto fail;
	}
	rc = bind_listen(c->lfd, c->path, errbuf, errlen);
	if (rc < 0)
		goto fail;
	if (pthread_create(&c->thread, NULL, control_main, c) != 0) {
		rc = sl_errbuf_set(errbuf, errlen, -EAGAIN, "cannot start the control thread");
		unlink(c->path);
		goto fail;
	}
	sl_log(SL_LOG_INFO, "control", "control socket: %s", c->path);
	*out = c;
	return 0;
fail:
	if (c->lfd >= 0)
		close(c->lfd);
	if (c->wake[0] >= 0)
		close(c->wake[0]), close(c->wake[1]);
	free(c);
	return rc;
}

void sli_control_stop(struct sli_control *c)
{
	ssize_t r;

	if (c == NULL)
		return;
	r = write(c->wake[1], "x", 1);
	(void)r;
	pthread_join(c->thread, NULL);
	unlink(c->path);
	close(c->lfd);
	close(c->wake[0]);
	close(c->wake[1]);
	free(c);
}

int sli_control_request(const char *sock, const char *request, char *reply, size_t len,
			char *errbuf, size_t errlen)
{
	struct sockaddr_un a;
	int fd, rc;

	if (fill_addr(&a, sock) < 0)
		return sl_errbuf_set(errbuf, errlen, -ENAMETOOLONG,
				     "control socket path '%s' is too long", sock);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return sl_errbuf_set(errbuf, errlen, -errno, "cannot create a socket: %s",
				     strerror(errno));
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		rc = -errno;
		close(fd);
		return sl_errbuf_set(errbuf, errlen, rc,
				     "cannot connect to control socket '%s': %s (is the job "
				     "running, with --checkpoint-dir or --control?)",
				     sock, strerror(-rc));
	}
	write_all(fd, request, strlen(request));
	write_all(fd, "\n", 1);
	rc = read_line(fd, -1, reply, len);
	close(fd);
	if (rc < 0)
		return sl_errbuf_set(errbuf, errlen, rc, "no reply from control socket '%s': %s",
				     sock, sl_strerror(rc));
	if (rc == 0)
		return sl_errbuf_set(errbuf, errlen, -EPROTO,
				     "control socket '%s' closed the connection without a reply",
				     sock);
	return 0;
}
