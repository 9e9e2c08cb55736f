/* SPDX-License-Identifier: Apache-2.0 */
/*
 * graph.c — the logical graph: the fluent builder of sl_job.h, job
 * options, and validation.
 *
 * Builder functions record the first error in the job and keep going, so
 * user code stays straight-line; sl_job_validate() reports it. Streams
 * are small handles (node, output port, partitioning of the next edge,
 * key function); an edge is created when an operator consumes a stream.
 * A job owns every node, edge and stream handle and frees them all.
 *
 * Threads: one thread builds a job.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sluice/sl_error.h>

#include "sli_core.h"

#define DEFAULT_BATCH	   512
#define DEFAULT_RING	   64
#define DEFAULT_MAX_RECORD (1u << 20)

static const char *const kind_names[] = {
	[SLI_SOURCE] = "source",
	[SLI_MAP] = "map",
	[SLI_MAP_BATCH] = "map",
	[SLI_FILTER] = "filter",
	[SLI_FILTER_BATCH] = "filter",
	[SLI_FLAT_MAP] = "flat_map",
	[SLI_PROCESS] = "process",
	[SLI_REDUCE] = "reduce",
	[SLI_WINDOW] = "window",
	[SLI_UNION] = "union",
	[SLI_SINK] = "sink",
	[SLI_WINDOW_JOIN] = "window_join",
	[SLI_INTERVAL_JOIN] = "interval_join",
	[SLI_KEYED_PROCESS] = "keyed_process",
	[SLI_WINDOW_GEN] = "window",
};

static const char *const part_names[] = {
	[SLI_PART_DEFAULT] = "default",	    [SLI_PART_FORWARD] = "forward",
	[SLI_PART_REBALANCE] = "rebalance", [SLI_PART_RESCALE] = "rescale",
	[SLI_PART_BROADCAST] = "broadcast", [SLI_PART_HASH] = "hash",
};

const char *sli_kind_name(enum sli_kind k)
{
	return kind_names[k];
}

const char *sli_part_name(enum sli_part p)
{
	return part_names[p];
}

static void build_error(struct sl_job *job, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void build_error(struct sl_job *job, int rc, const char *fmt, ...)
{
	va_list ap;

	if (job->build_err)
		return; /* the first error is the one worth reading */
	job->build_err = rc;
	va_start(ap, fmt);
	vsnprintf(job->build_msg, sizeof(job->build_msg), fmt, ap);
	va_end(ap);
}

int sl_job_create(const char *name, struct sl_job **out)
{
	struct sl_job *job;

	if (out == NULL || name == NULL || *name == '\0')
		return -EINVAL;
	job = calloc(1, sizeof(*job));
	if (job == NULL)
		return -ENOMEM;
	job->name = strdup(name);
	if (job->name == NULL) {
		free(job);
		return -ENOMEM;
	}
	job->parallelism = 1;
	job->batch_size = DEFAULT_BATCH;
	job->ring_size = DEFAULT_RING;
	job->max_record_size = DEFAULT_MAX_RECORD;
	job->state.job_name = job->name;
	sli_ckpt_opts_init(&job->ckpt);
	sli_restart_opts_init(&job->restart);
	atomic_init(&job->running, 0);
	atomic_init(&job->restarts, 0);
	atomic_init(&job->stop_requested, 0);
	atomic_init(&job->exec, NULL);
	atomic_init(&job->stats_readers, 0);
	*out = job;
	return 0;
}

void sl_job_destroy(struct sl_job *job)
{
	struct sl_stream *s, *next;

	if (job == NULL)
		return;
	sli_plan_free(&job->plan);
	for (unsigned i = 0; i < job->nnodes; i++) {
		free(job->nodes[i]->name);
		for (unsigned k = 0; k < job->nodes[i]->nstates; k++)
			free((char *)job->nodes[i]->states[k].name);
		free(job->nodes[i]->states);
		free(job->nodes[i]->wgen);
		free(job->nodes[i]->in);
		free(job->nodes[i]->out);
		free(job->nodes[i]);
	}
	for (unsigned i = 0; i < job->nedges; i++)
		free(job->edges[i]);
	for (s = job->streams; s != NULL; s = next) {
		next = s->next_alloc;
		free(s);
	}
	free(job->nodes);
	free(job->edges);
	free(job->last_task_stats);
	free(job->state.dir);
	sli_ckpt_opts_free(&job->ckpt);
	free(job->name);
	free(job);
}

/* ------------------------------------------------------------- options */

static int parse_uint(const char *v, unsigned long long lo, unsigned long long hi,
		      unsigned long long *out)
{
	char *end;
	unsigned long long x;

	if (v == NULL || *v < '0' || *v > '9')
		return -EINVAL;
	errno = 0;
	x = strtoull(v, &end, 10);
	if (errno || *end != '\0' || x < lo || x > hi)
		return -EINVAL;
	*out = x;
	return 0;
}

int sl_parse_duration_ms(const char *s, int64_t min, int64_t *out)
{
	static const struct {
		const char *unit;
		int64_t ms;
	} units[] = { { "ms", 1 }, { "s", 1000 }, { "m", 60000 }, { "h", 3600000 }, { "", 1 } };
	size_t digits = s ? strspn(s, "0123456789") : 0;
	int64_t v = 0;

	if (digits == 0 || digits > 18)
		return -EINVAL;
	for (size_t i = 0; i < digits; i++)
		v = v * 10 + (s[i] - '0');
	for (size_t u = 0; u < SL_ARRAY_SIZE(units); u++) {
		if (strcmp(s + digits, units[u].unit) != 0)
			continue;
		if (__builtin_mul_overflow(v, units[u].ms, out) || *out < min)
			return -EINVAL;
		return 0;
	}
	return -EINVAL;
}

int sli_set_duration_opt(const char *key, const char *value, int64_t min, int64_t *field,
			 char *errbuf, size_t errlen)
{
	int64_t v;

	/* Into a local first: a refused value leaves the option as it was. */
	if (sl_parse_duration_ms(value, min, &v) < 0)
		return sl_errbuf_set(errbuf, errlen, -EINVAL,
				     "bad value '%s' for option '%s': expected a duration "
				     "(milliseconds, or with a unit ms, s, m, h)%s",
				     value, key, min ? " greater than 0" : "");
	*field = v;
	return 0;
}

/*
 * A size in bytes: digits, then optionally B, or K, M, G, T with an
 * optional B or iB (any case), all powers of 1024 ("64M" = "64MiB" =
 * 67108864). Return 0, or -EINVAL (also on overflow).
 */
static int parse_size(const char *v, unsigned long long *out)
{
	static const char units[] = "kmgt";
	unsigned long long x;
	const char *u;
	char *end;
	int shift = 0;

	if (v == NULL || *v < '0' || *v > '9')
		return -EINVAL;
	errno = 0;
	x = strtoull(v, &end, 10);
	if (errno)
		return -EINVAL;
	if (*end != '\0' && (u = strchr(units, end[0] | 0x20)) != NULL) {
		shift = 10 * (int)(u - units + 1);
		end++;
		if ((end[0] | 0x20) == 'i' && (end[1] | 0x20) == 'b')
			end += 2;
		else if ((end[0] | 0x20) == 'b')
			end++;
	} else if ((*end | 0x20) == 'b') {
		end++;
	}
	if (*end != '\0' || (shift && x > (ULLONG_MAX >> shift)))
		return -EINVAL;
	*out = x << shift;
	return 0;
}

/* Why @dir cannot hold spill directories (a sentence), or NULL when it can. */
static const char *state_dir_problem(const char *dir, char *why, size_t len)
{
	char path[PATH_MAX];
	struct stat sb;
	char *slash;

	if (dir[0] == '\0')
		return "expected a directory path";
	if (strlen(dir) >= sizeof(path) - 256)
		return "the path is too long";
	snprintf(path, sizeof(path), "%s", dir);
	/* The directory, or its nearest existing ancestor (it will be created). */
	while (stat(path, &sb) < 0) {
		if (errno != ENOENT) {
			snprintf(why, len, "%s: %s", path, strerror(errno));
			return why;
		}
		slash = strrchr(path, '/');
		while (slash != NULL && slash > path && slash[-1] == '/')
			slash--;
		if (slash == NULL)
			snprintf(path, sizeof(path), ".");
		else
			slash[slash == path] = '\0';
	}
	if (!S_ISDIR(sb.st_mode))
		snprintf(why, len, "%s is not a directory", path);
	else if (access(path, W_OK | X_OK) < 0)
		snprintf(why, len, "%s is not writable: %s", path, strerror(errno));
	else
		return NULL;
	return why;
}

/* The smallest state-memory: below it, about every access would spill. */
#define STATE_MEMORY_MIN (64u << 10)

/* The state-memory, state-dir and state-io options: 1 when @key is not one of them. */
static int set_state_opt(struct sl_job *job, const char *key, const char *value, char *errbuf,
			 size_t errlen)
{
	static const char *const io_names[] = { "auto", "io_uring", "posix" };
	unsigned long long x;
	char why[PATH_MAX + 64];
	const char *bad;
	char *dup;

	if (!strcmp(key, "state-memory")) {
		if (parse_size(value, &x) < 0 || (x != 0 && x < STATE_MEMORY_MIN))
			return sl_errbuf_set(errbuf, errlen, -EINVAL,
					     "bad value '%s' for option 'state-memory': expected 0 "
					     "(unlimited) or a size of at least 64K, in bytes or "
					     "with a unit K, M, G or T (KiB, MiB...)",
					     value);
		job->state.memory = x;
		return 0;
	}
	if (!strcmp(key, "state-dir")) {
		bad = state_dir_problem(value, why, sizeof(why));
		if (bad != NULL)
			return sl_errbuf_set(errbuf, errlen, -EINVAL,
					     "bad value '%s' for option 'state-dir': %s", value,
					     bad);
		dup = strdup(value);
		if (dup == NULL)
			return sl_errbuf_set(errbuf, errlen, -ENOMEM, "out of memory");
		free(job->state.dir);
		job->state.dir = dup;
		return 0;
	}
	if (!strcmp(key, "state-io")) {
		for (int i = 0; i < (int)SL_ARRAY_SIZE(io_names); i++) {
			if (!strcmp(value, io_names[i])) {
				job->state.io = i;
				return 0;
			}
		}
		return sl_errbuf_set(errbuf, errlen, -EINVAL,
				     "bad value '%s' for option 'state-io': expected auto, "
				     "io_uring or posix",
				     value);
	}
	return 1;
}

int sli_state_default_dir(const char *job_name, char *buf, size_t len)
{
	const char *tmp = getenv("TMPDIR");
	int n;

	if (tmp == NULL || tmp[0] != '/')
		tmp = "/tmp";
	n = snprintf(buf, len, "%s/sluice-state-%ld-%s", tmp, (long)getpid(), job_name);
	if (n < 0 || (size_t)n >= len)
		return -ENAMETOOLONG;
	/* A job name is not a path: no separators in the directory's name. */
	for (char *p = buf + strlen(tmp) + 1; *p != '\0'; p++)
		if (*p == '/')
			*p = '_';
	return 0;
}

int sl_job_set(struct sl_job *job, const char *key, const char *value, char *errbuf, size_t errlen)
{
	unsigned long long x;
	int rc;

	if (job == NULL || key == NULL || value == NULL)
		return sl_errbuf_set(errbuf, errlen, -EINVAL, "sl_job_set: NULL argument");
	if (job->planned)
		return sl_errbuf_set(errbuf, errlen, -EBUSY,
				     "option '%s' cannot change after the job was planned", key);
#define UINT_OPT(name, lo, hi, field)                                                       \
	if (!strcmp(key, name)) {                                                           \
		if (parse_uint(value, lo, hi, &x) < 0)                                      \
			return sl_errbuf_set(errbuf, errlen, -EINVAL,                       \
					     "bad value '%s' for option '%s': expected an " \
					     "integer from %llu to %llu",                   \
					     value, key, (unsigned long long)(lo),          \
					     (unsigned long long)(hi));                     \
		job->field = (__typeof__(job->field))x;                                     \
		return 0;                                                                   \
	}
	UINT_OPT("parallelism", 1, 1024, parallelism)
	UINT_OPT("max-parallelism", 1, 32768, max_parallelism)
	UINT_OPT("workers", 1, 4096, workers)
	UINT_OPT("batch-size", 1, 65536, batch_size)
	UINT_OPT("max-record-size", 16, 1u << 30, max_record_size)
#undef UINT_OPT
	if (!strcmp(key, "ring-size")) {
		if (parse_uint(value, 2, 65536, &x) < 0 || !SL_IS_POW2(x))
			return sl_errbuf_set(errbuf, errlen, -EINVAL,
					     "bad value '%s' for option 'ring-size': expected a "
					     "power of two from 2 to 65536",
					     value);
		job->ring_size = (uint32_t)x;
		return 0;
	}
	if (!strcmp(key, "idle")) {
		if (strcmp(value, "busy") && strcmp(value, "sleep"))
			return sl_errbuf_set(errbuf, errlen, -EINVAL,
					     "bad value '%s' for option 'idle': expected busy or "
					     "sleep",
					     value);
		job->idle_busy = !strcmp(value, "busy");
		return 0;
	}
	if (!strcmp(key, "object-reuse")) {
		if (strcmp(value, "true") && strcmp(value, "false"))
			return sl_errbuf_set(
			    errbuf, errlen, -EINVAL,
			    "bad value '%s' for option 'object-reuse': expected true "
			    "or false",
			    value);
		job->object_reuse = !strcmp(value, "true");
		return 0;
	}
	rc = set_state_opt(job, key, value, errbuf, errlen);
	if (rc <= 0)
		return rc;
	rc = sli_ckpt_set_opt(job, key, value, errbuf, errlen);
	if (rc <= 0)
		return rc;
	rc = sli_restart_set_opt(&job->restart, key, value, errbuf, errlen);
	if (rc <= 0)
		return rc;
	return sl_errbuf_set(errbuf, errlen, -ENOENT, "unknown job option '%s'", key);
}

int sl_job_get(const struct sl_job *job, const char *key, char *buf, size_t len)
{
	unsigned long long v;

	if (job == NULL || key == NULL || buf == NULL || len == 0)
		return -EINVAL;
	if (!strcmp(key, "parallelism"))
		v = job->parallelism;
	else if (!strcmp(key, "max-parallelism"))
		v = job->max_parallelism ? job->max_parallelism
					 : sli_default_max_parallelism(job->parallelism);
	else if (!strcmp(key, "workers"))
		v = job->workers;
	else if (!strcmp(key, "batch-size"))
		v = job->batch_size;
	else if (!strcmp(key, "ring-size"))
		v = job->ring_size;
	else if (!strcmp(key, "max-record-size"))
		v = job->max_record_size;
	else if (!strcmp(key, "idle"))
		return snprintf(buf, len, "%s", job->idle_busy ? "busy" : "sleep") < (int)len
			   ? 0
			   : -ENOSPC;
	else if (!strcmp(key, "object-reuse"))
		return snprintf(buf, len, "%s", job->object_reuse ? "true" : "false") < (int)len
			   ? 0
			   : -ENOSPC;
	else if (!strcmp(key, "state-memory"))
		v = job->state.memory;
	else if (!strcmp(key, "state-dir") && job->state.dir == NULL)
		return sli_state_default_dir(job->name, buf, len) < 0 ? -ENOSPC : 0;
	else if (!strcmp(key, "state-dir"))
		return snprintf(buf, len, "%s", job->state.dir) < (int)len ? 0 : -ENOSPC;
	else if (!strcmp(key, "state-io"))
		return snprintf(buf, len, "%s",
				job->state.io == 1   ? "io_uring"
				: job->state.io == 2 ? "posix"
						     : "auto") < (int)len
			   ? 0
			   : -ENOSPC;
	else
		return -ENOENT;
	return snprintf(buf, len, "%llu", v) < (int)len ? 0 : -ENOSPC;
}

/* ------------------------------------------------------------- builder */

int sli_ptr_push(void *arrp, unsigned *n, void *item)
{
	void ***arr = arrp;
	void **na = realloc(*arr, (*n + 1) * sizeof(void *));

	if (na == NULL)
		return -ENOMEM;
	na[*n] = item;
	*arr = na;
	(*n)++;
	return 0;
}

static struct sl_stream *new_stream(struct sl_job *job, struct sli_node *node, unsigned port)
{
	struct sl_stream *s = calloc(1, sizeof(*s));

	if (s == NULL) {
		build_error(job, -ENOMEM, "out of memory while building the job");
		return NULL;
	}
	s->job = job;
	s->node = node;
	s->port = port;
	s->part = SLI_PART_DEFAULT;
	s->next_alloc = job->streams;
	job->streams = s;
	return s;
}

static struct sli_node *new_node(struct sl_job *job, enum sli_kind kind, const char *name,
				 const struct sl_type *type)
{
	struct sli_node *n;

	if (job->planned) {
		build_error(job, -EBUSY, "operator '%s' added after the job was planned",
			    name ? name : kind_names[kind]);
		return NULL;
	}
	n = calloc(1, sizeof(*n));
	if (n == NULL || sli_ptr_push(&job->nodes, &job->nnodes, n) < 0) {
		free(n);
		build_error(job, -ENOMEM, "out of memory while building the job");
		return NULL;
	}
	n->id = (int)job->nnodes - 1;
	n->kind = kind;
	if (name == NULL || *name == '\0') {
		char buf[32];

		snprintf(buf, sizeof(buf), "%s-%d", kind_names[kind], n->id);
		n->name = strdup(buf);
	} else {
		n->name = strdup(name);
	}
	if (n->name == NULL)
		build_error(job, -ENOMEM, "out of memory while building the job");
	if (type != NULL)
		n->type = *type;
	n->task = -1;
	return n;
}

static int check_type(struct sl_job *job, const char *op, const struct sl_type *t)
{
	if (t == NULL) {
		build_error(job, -EINVAL, "operator '%s': the element type is NULL", op);
		return -EINVAL;
	}
	if (t->size == 0 || t->size > 65536) {
		build_error(job, -EINVAL,
			    "operator '%s': element type '%s' has size %u (expected 1..65536)", op,
			    t->name ? t->name : "?", t->size);
		return -EINVAL;
	}
	if (t->nstr > SL_TYPE_MAX_STR) {
		build_error(job, -EINVAL, "operator '%s': element type has %u strings (max %d)", op,
			    t->nstr, SL_TYPE_MAX_STR);
		return -EINVAL;
	}
	for (uint32_t i = 0; i < t->nstr; i++)
		if (t->str_off[i] + sizeof(struct sl_str) > t->size) {
			build_error(job, -EINVAL,
				    "operator '%s': string field %u of type '%s' lies outside "
				    "the element",
				    op, i, t->name ? t->name : "?");
			return -EINVAL;
		}
	return 0;
}

/* Type of what flows out of @s. */
static const struct sl_type *stream_type(const struct sl_stream *s)
{
	return s->port == 0 ? &s->node->type : &s->node->side[s->port - 1];
}

static int connect(struct sl_stream *s, struct sli_node *to)
{
	struct sl_job *job = s->job;
	struct sli_edge *e = calloc(1, sizeof(*e));

	if (e == NULL || sli_ptr_push(&job->edges, &job->nedges, e) < 0) {
		free(e);
		build_error(job, -ENOMEM, "out of memory while building the job");
		return -ENOMEM;
	}
	e->from = s->node;
	e->to = to;
	e->port = s->port;
	e->part = s->part;
	e->key = s->key;
	e->id = (int)job->nedges - 1;
	if (sli_ptr_push(&s->node->out, &s->node->nout, e) < 0 ||
	    sli_ptr_push(&to->in, &to->nin, e) < 0) {
		build_error(job, -ENOMEM, "out of memory while building the job");
		return -ENOMEM;
	}
	return 0;
}

/*
 * A stream handle whose node is NULL stands for "this was not built";
 * operators applied to it return it unchanged (the job already holds the
 * error). These helpers make that check once.
 */
#define REQUIRE_NODE(in)                \
	do {                            \
		if ((in) == NULL)       \
			return NULL;    \
		if ((in)->node == NULL) \
			return (in);    \
	} while (0)

/* A handle for "this was not built": operators applied to it return it. */
static struct sl_stream *poisoned(struct sl_job *job)
{
	return new_stream(job, NULL, 0);
}

/*
 * An operator with one input @in producing @type (NULL: the input's
 * type). @fn is stored through the generic member of the node's union and
 * converted back to its real type where it is called.
 */
static struct sl_stream *unary(struct sl_stream *in, enum sli_kind kind, const char *name,
			       const struct sl_type *type, void (*fn)(void), void *arg)
{
	struct sli_node *n;

	if (fn == NULL) {
		build_error(in->job, -EINVAL, "operator '%s': the %s function is NULL",
			    name ? name : kind_names[kind], kind_names[kind]);
		return poisoned(in->job);
	}
	if (type == NULL && kind != SLI_MAP && kind != SLI_MAP_BATCH && kind != SLI_FLAT_MAP &&
	    kind != SLI_PROCESS)
		type = stream_type(in);
	if (check_type(in->job, name ? name : kind_names[kind], type) < 0)
		return poisoned(in->job);
	n = new_node(in->job, kind, name, type);
	if (n == NULL)
		return poisoned(in->job);
	n->fn.any = fn;
	n->arg = arg;
	if (connect(in, n) < 0)
		return poisoned(in->job);
	return new_stream(in->job, n, 0);
}

struct sl_stream *sl_source(struct sl_job *job, const char *name, const struct sl_source_ops *ops,
			    void *arg, const struct sl_type *type)
{
	struct sli_node *n;

	if (job == NULL)
		return NULL;
	if (ops == NULL || ops->open == NULL || ops->poll == NULL || ops->close == NULL) {
		build_error(job, -EINVAL,
			    "source '%s': its ops need open, poll and close functions",
			    name ? name : "?");
		return poisoned(job);
	}
	if (check_type(job, name ? name : "source", type) < 0)
		return poisoned(job);
	n = new_node(job, SLI_SOURCE, name, type);
	if (n == NULL)
		return poisoned(job);
	n->fn.source = ops;
	n->arg = arg;
	return new_stream(job, n, 0);
}

struct sl_stream *sl_map(struct sl_stream *in, const char *name, sl_map_fn fn, void *arg,
			 const struct sl_type *out_type)
{
	REQUIRE_NODE(in);
	return unary(in, SLI_MAP, name, out_type, (void (*)(void))fn, arg);
}

struct sl_stream *sl_map_batch(struct sl_stream *in, const char *name, sl_map_batch_fn fn,
			       void *arg, const struct sl_type *out_type)
{
	REQUIRE_NODE(in);
	return unary(in, SLI_MAP_BATCH, name, out_type, (void (*)(void))fn, arg);
}

struct sl_stream *sl_filter(struct sl_stream *in, const char *name, sl_filter_fn fn, void *arg)
{
	REQUIRE_NODE(in);
	return unary(in, SLI_FILTER, name, NULL, (void (*)(void))fn, arg);
}

struct sl_stream *sl_filter_batch(struct sl_stream *in, const char *name, sl_filter_batch_fn fn,
				  void *arg)
{
	REQUIRE_NODE(in);
	return unary(in, SLI_FILTER_BATCH, name, NULL, (void (*)(void))fn, arg);
}

struct sl_stream *sl_flat_map(struct sl_stream *in, const char *name, sl_flat_map_fn fn, void *arg,
			      const struct sl_type *out_type)
{
	REQUIRE_NODE(in);
	return unary(in, SLI_FLAT_MAP, name, out_type, (void (*)(void))fn, arg);
}

struct sl_stream *sl_process(struct sl_stream *in, const char *name, sl_process_fn fn, void *arg,
			     const struct sl_type *out_type)
{
	REQUIRE_NODE(in);
	return unary(in, SLI_PROCESS, name, out_type, (void (*)(void))fn, arg);
}

struct sl_stream *sl_side_output(struct sl_stream *proc, unsigned tag, const struct sl_type *type)
{
	struct sli_node *n;

	REQUIRE_NODE(proc);
	n = proc->node;
	if ((n->kind != SLI_PROCESS && n->kind != SLI_WINDOW && n->kind != SLI_KEYED_PROCESS &&
	     n->kind != SLI_WINDOW_GEN && n->kind != SLI_WINDOW_JOIN &&
	     n->kind != SLI_INTERVAL_JOIN) ||
	    proc->port != 0) {
		build_error(proc->job, -EINVAL,
			    "side output %u requested from '%s', which is not a process operator",
			    tag, n->name);
		return poisoned(proc->job);
	}
	if ((n->kind == SLI_WINDOW || n->kind == SLI_WINDOW_GEN) &&
	    (tag != 0 || type == NULL || type->size != n->in[0]->from->type.size)) {
		build_error(proc->job, -EINVAL,
			    "window '%s': its only side output is 0, the late elements, of its "
			    "input type",
			    n->name);
		return poisoned(proc->job);
	}
	if ((n->kind == SLI_WINDOW_JOIN || n->kind == SLI_INTERVAL_JOIN) &&
	    (tag > 1 || type == NULL || type->size != n->in[tag]->from->type.size)) {
		build_error(
		    proc->job, -EINVAL,
		    "join '%s': its side outputs are 0 and 1, the late elements of its left "
		    "and right input, of that input's type",
		    n->name);
		return poisoned(proc->job);
	}
	if (tag >= SLI_MAX_PORTS - 1) {
		build_error(proc->job, -EINVAL, "operator '%s': side output tag %u (max %d)",
			    n->name, tag, SLI_MAX_PORTS - 2);
		return poisoned(proc->job);
	}
	if (check_type(proc->job, n->name, type) < 0)
		return poisoned(proc->job);
	if (tag < n->nside && n->side[tag].size != 0 &&
	    (n->side[tag].size != type->size || n->side[tag].nstr != type->nstr)) {
		build_error(proc->job, -EINVAL,
			    "operator '%s': side output %u declared twice with different types",
			    n->name, tag);
		return poisoned(proc->job);
	}
	n->side[tag] = *type;
	if (tag + 1 > n->nside)
		n->nside = tag + 1;
	return new_stream(proc->job, n, tag + 1);
}

static struct sl_stream *with_part(struct sl_stream *in, enum sli_part part, struct sli_keyspec key)
{
	struct sl_stream *s;

	REQUIRE_NODE(in);
	s = new_stream(in->job, in->node, in->port);
	if (s == NULL)
		return poisoned(in->job);
	s->part = part;
	s->key = key;
	return s;
}

static const struct sli_keyspec no_key = { NULL, 0, 0 };

struct sl_stream *sl_key_by(struct sl_stream *in, sl_key_fn fn)
{
	REQUIRE_NODE(in);
	if (fn == NULL) {
		build_error(in->job, -EINVAL, "key_by after '%s': the key function is NULL",
			    in->node->name);
		return poisoned(in->job);
	}
	return with_part(in, SLI_PART_HASH, (struct sli_keyspec){ fn, 0, 0 });
}

struct sl_stream *sl_key_by_field(struct sl_stream *in, uint32_t offset, uint32_t len)
{
	const struct sl_type *t;

	REQUIRE_NODE(in);
	t = stream_type(in);
	if (len == 0 || offset > t->size || len > t->size - offset) {
		build_error(in->job, -EINVAL,
			    "key_by after '%s': the key field (offset %u, %u bytes) is not inside "
			    "its %u-byte elements",
			    in->node->name, offset, len, t->size);
		return poisoned(in->job);
	}
	for (uint32_t i = 0; i < t->nstr; i++) {
		if (offset < t->str_off[i] + sizeof(struct sl_str) &&
		    t->str_off[i] < offset + len) {
			build_error(in->job, -EINVAL,
				    "key_by after '%s': the key field (offset %u, %u bytes) "
				    "overlaps a string (struct sl_str at %u); key by a string "
				    "with sl_key_by()",
				    in->node->name, offset, len, t->str_off[i]);
			return poisoned(in->job);
		}
	}
	return with_part(in, SLI_PART_HASH, (struct sli_keyspec){ NULL, offset, len });
}

struct sl_stream *sl_rebalance(struct sl_stream *in)
{
	return with_part(in, SLI_PART_REBALANCE, no_key);
}

struct sl_stream *sl_rescale(struct sl_stream *in)
{
	return with_part(in, SLI_PART_RESCALE, no_key);
}

struct sl_stream *sl_broadcast(struct sl_stream *in)
{
	return with_part(in, SLI_PART_BROADCAST, no_key);
}

struct sl_stream *sl_forward(struct sl_stream *in)
{
	return with_part(in, SLI_PART_FORWARD, no_key);
}

struct sl_stream *sl_reduce(struct sl_stream *in, const char *name, sl_reduce_fn fn, void *arg,
			    enum sl_reduce_mode mode)
{
	struct sl_stream *s;

	REQUIRE_NODE(in);
	if (mode != SL_REDUCE_ROLLING && mode != SL_REDUCE_FINAL) {
		build_error(in->job, -EINVAL, "operator '%s': unknown reduce mode %d",
			    name ? name : "reduce", (int)mode);
		return poisoned(in->job);
	}
	s = unary(in, SLI_REDUCE, name, NULL, (void (*)(void))fn, arg);
	if (s->node != NULL)
		s->node->reduce_mode = mode;
	return s;
}

struct sl_stream *sl_assign_watermarks(struct sl_stream *src,
				       const struct sl_watermark_strategy *ws)
{
	REQUIRE_NODE(src);
	if (ws == NULL || src->node->kind != SLI_SOURCE || src->port != 0) {
		build_error(src->job, -EINVAL,
			    "watermarks are generated at a source: '%s' is not one (or the "
			    "strategy is NULL)",
			    src->node->name);
		return poisoned(src->job);
	}
	if (ws->out_of_orderness_ms < 0 || ws->interval_ms < 0 || ws->idle_timeout_ms < 0) {
		build_error(src->job, -EINVAL,
			    "source '%s': watermark out-of-orderness, interval and idle timeout "
			    "must be >= 0",
			    src->node->name);
		return poisoned(src->job);
	}
	src->node->wm = *ws;
	if (src->node->wm.interval_ms == 0)
		src->node->wm.interval_ms = SL_WATERMARK_INTERVAL_MS;
	src->node->has_wm = true;
	return src;
}

static int check_window_spec(struct sl_job *job, const char *name, const struct sl_window_spec *w)
{
	const char *bad = NULL;

	if (w->allowed_lateness < 0)
		bad = "allowed lateness must be >= 0";
	else if (w->kind == SL_WINDOW_TUMBLING && w->size <= 0)
		bad = "a tumbling window needs a size > 0";
	else if (w->kind == SL_WINDOW_SLIDING && (w->size <= 0 || w->slide <= 0))
		bad = "a sliding window needs a size and a slide > 0";
	else if (w->kind == SL_WINDOW_SESSION && w->gap <= 0)
		bad = "a session window needs a gap > 0";
	else if (w->kind != SL_WINDOW_TUMBLING && w->kind != SL_WINDOW_SLIDING &&
		 w->kind != SL_WINDOW_SESSION)
		bad = "unknown window kind";
	if (bad == NULL)
		return 0;
	build_error(job, -EINVAL, "window '%s': %s", name, bad);
	return -EINVAL;
}

struct sl_stream *sl_keyed_process(struct sl_stream *keyed, const char *name,
				   const struct sl_keyed_process *p, const struct sl_type *out_type)
{
	struct sl_stream *s;

	REQUIRE_NODE(keyed);
	name = name ? name : "keyed_process";
	if (p == NULL || p->element == NULL || out_type == NULL) {
		build_error(keyed->job, -EINVAL,
			    "keyed process '%s': needs a function struct with element() and an "
			    "output type",
			    name);
		return poisoned(keyed->job);
	}
	s = unary(keyed, SLI_KEYED_PROCESS, name, out_type, (void (*)(void))p->element, p->arg);
	if (s->node != NULL)
		s->node->kp = *p;
	return s;
}

/* A placeholder for the node's function: the engine adds a built-in aggregate's elements. */
static void builtin_agg_fn(void)
{
}

/* Check built-in aggregate @agg of a window @name over elements of @in. 0 or -EINVAL. */
static int check_builtin_agg(struct sl_job *job, const char *name, const struct sl_aggregate *agg,
			     const struct sl_type *in)
{
	const char *bad = NULL;

	if (agg->builtin > SL_AGG_MAX_I64)
		bad = "an unknown built-in aggregate";
	else if (agg->create != NULL || agg->add != NULL || agg->merge != NULL)
		bad = "a built-in aggregate with its own create, add or merge (leave them NULL)";
	else if (agg->acc_size != sizeof(int64_t))
		bad = "a built-in aggregate whose acc_size is not 8";
	else if (agg->builtin != SL_AGG_COUNT &&
		 (agg->field > in->size || in->size - agg->field < sizeof(int64_t)))
		bad = "a built-in aggregate whose int64 field is not inside the input elements";
	if (bad == NULL)
		return 0;
	build_error(job, -EINVAL, "window '%s': %s (builtin %u, field %u, %u-byte input)", name,
		    bad, agg->builtin, agg->field, in->size);
	return -EINVAL;
}

struct sl_stream *sl_window_aggregate(struct sl_stream *in, const char *name,
				      const struct sl_window_spec *spec,
				      const struct sl_aggregate *agg,
				      const struct sl_type *out_type)
{
	struct sl_stream *s;

	REQUIRE_NODE(in);
	name = name ? name : "window";
	if (agg != NULL && agg->builtin != SL_AGG_CUSTOM &&
	    check_builtin_agg(in->job, name, agg, stream_type(in)) < 0)
		return poisoned(in->job);
	if (spec == NULL || agg == NULL || (agg->builtin == SL_AGG_CUSTOM && agg->add == NULL) ||
	    agg->result == NULL || agg->acc_size == 0) {
		build_error(in->job, -EINVAL,
			    "window '%s': needs a spec and an aggregate with acc_size, add and "
			    "result",
			    name);
		return poisoned(in->job);
	}
	if (check_window_spec(in->job, name, spec) < 0)
		return poisoned(in->job);
	if (spec->kind == SL_WINDOW_SESSION && agg->merge == NULL &&
	    agg->builtin == SL_AGG_CUSTOM) {
		build_error(in->job, -EINVAL,
			    "window '%s': session windows merge, the aggregate needs merge()",
			    name);
		return poisoned(in->job);
	}
	if (out_type == NULL) {
		build_error(in->job, -EINVAL, "window '%s': the output type is NULL", name);
		return poisoned(in->job);
	}
	s = unary(in, SLI_WINDOW, name, out_type,
		  agg->add ? (void (*)(void))agg->add : builtin_agg_fn, agg->arg);
	if (s->node != NULL) {
		s->node->win = *spec;
		s->node->agg = *agg;
		if (agg->builtin != SL_AGG_CUSTOM)
			s->node->agg.flags |= SL_AGG_SLICEABLE;
	}
	return s;
}

/* A placeholder for the node's function: sl_window() keeps its conf in node->wgen. */
static void window_gen_fn(void)
{
}

struct sl_stream *sl_window(struct sl_stream *keyed, const char *name,
			    const struct sl_window_conf *conf, const struct sl_type *out_type)
{
	struct sli_wgen_conf *wc = NULL;
	struct sl_stream *s;
	char msg[256];
	int rc;

	REQUIRE_NODE(keyed);
	name = name ? name : "window";
	rc = sli_wgen_conf_new(conf, stream_type(keyed), out_type, &wc, msg, sizeof(msg));
	if (rc < 0) {
		build_error(keyed->job, rc, "window '%s': %s", name, msg);
		return poisoned(keyed->job);
	}
	s = unary(keyed, SLI_WINDOW_GEN, name, out_type, window_gen_fn, NULL);
	if (s->node != NULL)
		s->node->wgen = wc;
	else
		free(wc);
	return s;
}

struct sl_stream *sl_union(struct sl_stream *a, struct sl_stream *b)
{
	const struct sl_type *ta, *tb;
	struct sli_node *n;

	if (a == NULL || b == NULL)
		return NULL;
	if (a->node == NULL)
		return a;
	if (b->node == NULL)
		return b;
	if (a->job != b->job) {
		build_error(a->job, -EINVAL, "union of '%s' and '%s' from different jobs",
			    a->node->name, b->node->name);
		return poisoned(a->job);
	}
	ta = stream_type(a);
	tb = stream_type(b);
	if (ta->size != tb->size || ta->nstr != tb->nstr ||
	    memcmp(ta->str_off, tb->str_off, sizeof(ta->str_off)) != 0) {
		build_error(a->job, -EINVAL,
			    "union of '%s' (%u-byte '%s') and '%s' (%u-byte '%s'): element types "
			    "differ",
			    a->node->name, ta->size, ta->name ? ta->name : "?", b->node->name,
			    tb->size, tb->name ? tb->name : "?");
		return poisoned(a->job);
	}
	n = new_node(a->job, SLI_UNION, NULL, ta);
	if (n == NULL || connect(a, n) < 0 || connect(b, n) < 0)
		return poisoned(a->job);
	return new_stream(a->job, n, 0);
}

/* ------------------------------------------------- two-input operators */

struct sl_stream *sli_build_fail(struct sl_job *job, int rc, const char *fmt, ...)
{
	va_list ap;

	if (!job->build_err) {
		job->build_err = rc;
		va_start(ap, fmt);
		vsnprintf(job->build_msg, sizeof(job->build_msg), fmt, ap);
		va_end(ap);
	}
	return poisoned(job);
}

const struct sl_type *sli_stream_type(const struct sl_stream *s)
{
	return stream_type(s);
}

struct sl_stream *sli_two_input(struct sl_stream *left, struct sl_stream *right, enum sli_kind kind,
				const char *name, const struct sl_type *type, void (*fn)(void),
				void *arg)
{
	struct sli_node *n;

	if (left == NULL || right == NULL)
		return NULL;
	if (left->node == NULL)
		return left;
	if (right->node == NULL)
		return right;
	if (check_type(left->job, name ? name : kind_names[kind], type) < 0)
		return poisoned(left->job);
	n = new_node(left->job, kind, name, type);
	if (n == NULL)
		return poisoned(left->job);
	n->fn.any = fn;
	n->arg = arg;
	if (connect(left, n) < 0 || connect(right, n) < 0)
		return poisoned(left->job);
	n->in[1]->input = 1;
	return new_stream(left->job, n, 0);
}

struct sl_stream *sl_sink(struct sl_stream *in, const char *name, const struct sl_sink_ops *ops,
			  void *arg)
{
	struct sli_node *n;

	REQUIRE_NODE(in);
	if (ops == NULL || ops->open == NULL || ops->write == NULL || ops->close == NULL) {
		build_error(in->job, -EINVAL, "sink '%s': its ops need open, write and close",
			    name ? name : "?");
		return poisoned(in->job);
	}
	n = new_node(in->job, SLI_SINK, name, stream_type(in));
	if (n == NULL)
		return poisoned(in->job);
	n->fn.sink = ops;
	n->arg = arg;
	if (connect(in, n) < 0)
		return poisoned(in->job);
	return new_stream(in->job, n, 0);
}

struct sl_stream *sl_set_parallelism(struct sl_stream *s, unsigned parallelism)
{
	REQUIRE_NODE(s);
	if (parallelism == 0 || parallelism > 1024) {
		build_error(s->job, -EINVAL, "operator '%s': parallelism %u (expected 1..1024)",
			    s->node->name, parallelism);
		return s;
	}
	s->node->parallelism = parallelism;
	s->node->explicit_parallelism = true;
	return s;
}

struct sl_stream *sl_disable_chaining(struct sl_stream *s)
{
	REQUIRE_NODE(s);
	s->node->chaining_disabled = true;
	return s;
}

struct sl_stream *sl_start_new_chain(struct sl_stream *s)
{
	REQUIRE_NODE(s);
	s->node->new_chain = true;
	return s;
}

/* ---------------------------------------------------------- validation */

/* Kahn's algorithm; the builder cannot make cycles today, but an API for
 * iterations could, and the plan relies on a topological order. */
static int check_acyclic(struct sl_job *job, char *errbuf, size_t errlen)
{
	unsigned *indeg = calloc(job->nnodes ? job->nnodes : 1, sizeof(unsigned));
	unsigned *queue = calloc(job->nnodes ? job->nnodes : 1, sizeof(unsigned));
	unsigned head = 0, tail = 0, seen = 0;
	int rc = 0;

	if (indeg == NULL || queue == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	for (unsigned i = 0; i < job->nedges; i++)
		indeg[job->edges[i]->to->id]++;
	for (unsigned i = 0; i < job->nnodes; i++)
		if (indeg[i] == 0)
			queue[tail++] = i;
	while (head < tail) {
		struct sli_node *n = job->nodes[queue[head++]];

		seen++;
		for (unsigned k = 0; k < n->nout; k++)
			if (--indeg[n->out[k]->to->id] == 0)
				queue[tail++] = (unsigned)n->out[k]->to->id;
	}
	if (seen != job->nnodes) {
		for (unsigned i = 0; i < job->nnodes; i++)
			if (indeg[i] != 0) {
				rc =
				    sl_errbuf_set(errbuf, errlen, -ELOOP,
						  "the job graph has a cycle through operator '%s'",
						  job->nodes[i]->name);
				break;
			}
	}
out:
	free(indeg);
	free(queue);
	return rc;
}

/* Resolve the default parallelism of node @n (sinks follow their input). */
static void resolve_parallelism(struct sl_job *job, struct sli_node *n)
{
	if (n->explicit_parallelism)
		return;
	if (n->kind == SLI_SINK && n->nin == 1) {
		resolve_parallelism(job, n->in[0]->from);
		n->parallelism = n->in[0]->from->parallelism;
		return;
	}
	n->parallelism = job->parallelism;
}

int sl_job_validate(struct sl_job *job, char *errbuf, size_t errlen)
{
	unsigned nsources = 0, nsinks = 0, maxp = 0;
	int rc;

	if (job == NULL)
		return -EINVAL;
	if (job->build_err)
		return sl_errbuf_set(errbuf, errlen, job->build_err, "%s", job->build_msg);
	for (unsigned i = 0; i < job->nnodes; i++) {
		struct sli_node *n = job->nodes[i];

		nsources += n->kind == SLI_SOURCE;
		nsinks += n->kind == SLI_SINK;
		resolve_parallelism(job, n);
		if (n->parallelism > maxp)
			maxp = n->parallelism;
	}
	if (nsources == 0)
		return sl_errbuf_set(errbuf, errlen, -EINVAL,
				     "job '%s' has no source: add one with sl_source()", job->name);
	if (nsinks == 0)
		return sl_errbuf_set(errbuf, errlen, -EINVAL,
				     "job '%s' has no sink: add one with sl_sink()", job->name);
	rc = check_acyclic(job, errbuf, errlen);
	if (rc < 0)
		return rc;
	if (job->max_parallelism == 0)
		job->max_parallelism = sli_default_max_parallelism(maxp);
	if (maxp > job->max_parallelism)
		return sl_errbuf_set(errbuf, errlen, -EINVAL,
				     "parallelism %u is larger than max-parallelism %u", maxp,
				     job->max_parallelism);

	for (unsigned i = 0; i < job->nedges; i++) {
		struct sli_edge *e = job->edges[i];
		unsigned pf = e->from->parallelism, pt = e->to->parallelism;

		if (e->part == SLI_PART_FORWARD && pf != pt)
			return sl_errbuf_set(
			    errbuf, errlen, -EINVAL,
			    "forward edge from '%s' (parallelism %u) to '%s' (parallelism %u): "
			    "a forward edge needs equal parallelism; use sl_rebalance() or "
			    "set the same parallelism",
			    e->from->name, pf, e->to->name, pt);
		if ((e->to->kind == SLI_REDUCE || e->to->kind == SLI_WINDOW ||
		     e->to->kind == SLI_KEYED_PROCESS || e->to->kind == SLI_WINDOW_GEN) &&
		    e->part != SLI_PART_HASH)
			return sl_errbuf_set(errbuf, errlen, -EINVAL,
					     "operator '%s' (%s) needs a keyed stream: call "
					     "sl_key_by() on its input",
					     e->to->name, kind_names[e->to->kind]);
		if (e->port > 0 && e->port > e->from->nside)
			return sl_errbuf_set(errbuf, errlen, -EINVAL,
					     "operator '%s': side output %u was never declared",
					     e->from->name, e->port - 1);
	}
	for (unsigned i = 0; i < job->nnodes; i++) {
		struct sli_node *n = job->nodes[i];

		if (n->kind == SLI_SOURCE && n->nout == 0)
			return sl_errbuf_set(errbuf, errlen, -EINVAL,
					     "source '%s' is not connected to anything", n->name);
	}
	job->validated = true;
	return 0;
}

int sl_job_op_counters(const struct sl_job *job, const char *op, uint64_t *bad_records,
		       uint64_t *late_records_dropped)
{
	if (job == NULL || op == NULL)
		return -EINVAL;
	for (unsigned i = 0; i < job->nnodes; i++) {
		struct sli_node *n = job->nodes[i];

		if (strcmp(n->name, op) != 0)
			continue;
		if (bad_records != NULL)
			*bad_records =
			    atomic_load_explicit(&n->counters.bad_records, memory_order_relaxed);
		if (late_records_dropped != NULL)
			*late_records_dropped = atomic_load_explicit(
			    &n->counters.late_records_dropped, memory_order_relaxed);
		return 0;
	}
	return -ENOENT;
}
