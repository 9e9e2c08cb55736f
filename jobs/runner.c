/* SPDX-License-Identifier: Apache-2.0 */
/*
 * runner.c — running a job from the command line: SIGINT/SIGTERM stop it
 * gracefully, and a live status line shows its throughput on a terminal.
 *
 * Signals: the handlers (sigaction) call sl_job_stop(), which is
 * async-signal-safe: the sources stop reading, what is in flight drains,
 * the sinks finish and sl_job_run() returns 0. A second signal exits at
 * once with status 130. The handlers stay installed until the process
 * exits, so a second signal while the results are printed still exits.
 *
 * Which thread takes a signal: the worker threads run with SIGINT and
 * SIGTERM blocked (they inherit the mask the main thread has while it
 * calls sl_job_run()), so a signal never interrupts a source's poll(2) or
 * read(2) with EINTR. The watch thread keeps them unblocked and takes
 * them while the job runs; afterwards the main thread does.
 *
 * The watch thread also prints the status line, about every 500 ms, when
 * standard error is a terminal: "\rrecords/s in N, out M, backpressure P%",
 * from sl_job_stats() deltas (sink and source records, backpressured time
 * over busy time).
 *
 * Threads: sli_run_job() and sli_run_forget() on the main thread; the
 * handlers on whichever thread takes the signal.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sluice/sl_error.h>
#include <sluice/sl_job.h>

#include "jobs.h"

#define STATUS_PERIOD_NS 500000000LL

/* Lock-free atomics, so the handler may touch them. */
static struct sl_job *_Atomic g_job;
static _Atomic int g_signals;
static _Atomic int g_tty;

static void on_signal(int sig)
{
	static const char note[] =
	    "sluice: stopping: draining the job (signal again to exit now)\n";
	int saved = errno;
	ssize_t r;

	(void)sig;
	/* Relaxed: a count and a pointer; the handler orders nothing else. */
	if (atomic_fetch_add_explicit(&g_signals, 1, memory_order_relaxed) > 0)
		_exit(130);
	sl_job_stop(atomic_load_explicit(&g_job, memory_order_relaxed));
	if (atomic_load_explicit(&g_tty, memory_order_relaxed)) {
		r = write(STDERR_FILENO, "\n", 1);
		(void)r;
	}
	r = write(STDERR_FILENO, note, sizeof(note) - 1);
	(void)r;
	errno = saved;
}

static int install_handlers(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	if (sigaction(SIGINT, &sa, NULL) < 0 || sigaction(SIGTERM, &sa, NULL) < 0)
		return -errno;
	return 0;
}

struct watch {
	struct sl_job *job;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond; /* signalled when done is set */
	bool done;
	bool tty;
	bool printed;
};

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Growth of a counter; after a restart (counters from 0 again) all of @cur. */
static uint64_t delta(uint64_t cur, uint64_t prev)
{
	return cur >= prev ? cur - prev : cur;
}

static void print_status(struct watch *w, const struct sl_job_stats *prev,
			 const struct sl_job_stats *cur, int64_t dt_ns)
{
	uint64_t din = delta(cur->source_records, prev->source_records);
	uint64_t dout = delta(cur->sink_records, prev->sink_records);
	uint64_t dbusy = delta(cur->busy_ns, prev->busy_ns);
	uint64_t dbp = delta(cur->backpressured_ns, prev->backpressured_ns);
	double secs = (double)dt_ns / 1e9;
	unsigned bp = 0;

	if (dbusy > 0)
		bp = dbp >= dbusy ? 100 : (unsigned)(dbp * 100 / dbusy);
	/* "\033[K" clears what a longer previous line left. */
	fprintf(stderr, "\rrecords/s in %.0f, out %.0f, backpressure %u%%\033[K",
		(double)din / secs, (double)dout / secs, bp);
	fflush(stderr);
	w->printed = true;
}

static void *watch_main(void *arg)
{
	struct watch *w = arg;
	struct sl_job_stats prev, cur;
	int64_t t0 = now_ns(), t1;

	memset(&prev, 0, sizeof(prev));
	pthread_mutex_lock(&w->lock);
	while (!w->done) {
		struct timespec dl;

		clock_gettime(CLOCK_REALTIME, &dl);
		dl.tv_nsec += STATUS_PERIOD_NS;
		if (dl.tv_nsec >= 1000000000L) {
			dl.tv_sec++;
			dl.tv_nsec -= 1000000000L;
		}
		if (pthread_cond_timedwait(&w->cond, &w->lock, &dl) != ETIMEDOUT || w->done ||
		    !w->tty)
			continue;
		pthread_mutex_unlock(&w->lock);
		sl_job_stats(w->job, &cur);
		t1 = now_ns();
		if (cur.running && t1 > t0) {
			print_status(w, &prev, &cur, t1 - t0);
			prev = cur;
			t0 = t1;
		}
		pthread_mutex_lock(&w->lock);
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

/*
 * Once at the end: the restart strategy's work (the warnings said why),
 * and with a checkpoint dir what checkpoints cost the tasks.
 */
static void print_restarts(const struct sl_job *job)
{
	struct sl_job_stats st;
	struct sl_checkpoint_stats cs;

	sl_job_stats(job, &st);
	if (st.restarts > 0)
		fprintf(stderr, "sluice: the restart strategy restarted the job %u time%s\n",
			st.restarts, st.restarts == 1 ? "" : "s");
	if (sl_job_checkpoint_stats(job, &cs) == 0 && cs.enabled)
		fprintf(stderr,
			"sluice: checkpoints: %" PRIu64 " completed, %" PRIu64
			" failed, longest task pause %.3f ms; copy-on-write: %" PRIu64
			" B copied by tasks, %" PRIu64 " arrays moved\n",
			cs.completed, cs.failed, (double)cs.max_pause_ns / 1e6, cs.cow_task_bytes,
			cs.cow_retired);
}

int sli_run_job(struct sl_job *job, const struct sl_platform *platform, bool *stopped, char *errbuf,
		size_t errlen)
{
	struct watch w = { .job = job };
	sigset_t block, old;
	bool watching;
	int rc;

	*stopped = false;
	w.tty = isatty(STDERR_FILENO) == 1;
	atomic_store_explicit(&g_tty, w.tty, memory_order_relaxed);
	atomic_store_explicit(&g_job, job, memory_order_relaxed);
	rc = install_handlers();
	if (rc < 0)
		return sl_errbuf_set(errbuf, errlen, rc, "cannot install signal handlers: %s",
				     sl_strerror(rc));
	pthread_mutex_init(&w.lock, NULL);
	pthread_cond_init(&w.cond, NULL);
	/* Created before the mask below, so it keeps the signals unblocked. */
	watching = pthread_create(&w.thread, NULL, watch_main, &w) == 0;

	/*
	 * Without the watch thread, leave the signals unblocked: a source may
	 * then see EINTR, but the job can still be stopped.
	 */
	sigemptyset(&block);
	if (watching) {
		sigaddset(&block, SIGINT);
		sigaddset(&block, SIGTERM);
	}
	pthread_sigmask(SIG_BLOCK, &block, &old);
	rc = sl_job_run(job, platform, errbuf, errlen);
	print_restarts(job);

	if (watching) {
		pthread_mutex_lock(&w.lock);
		w.done = true;
		pthread_cond_signal(&w.cond);
		pthread_mutex_unlock(&w.lock);
		pthread_join(w.thread, NULL);
	}
	if (w.printed)
		fputc('\n', stderr);
	/* Signals that arrived meanwhile are delivered here, on this thread. */
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_cond_destroy(&w.cond);
	pthread_mutex_destroy(&w.lock);
	*stopped = atomic_load_explicit(&g_signals, memory_order_relaxed) > 0;
	return rc;
}

void sli_run_forget(void)
{
	atomic_store_explicit(&g_job, NULL, memory_order_relaxed);
}
