/* SPDX-License-Identifier: Apache-2.0 */
/*
 * plan.c — logical graph to physical plan, and the plan printout.
 *
 * Fusion (Flink's chaining): node B joins the task of its input A when
 * the edge is forward, from A's main output, A feeds only B, both have
 * the same parallelism and neither has chaining disabled (nor B starts a
 * new chain). Unlike Flink, a hash (key_by) edge between two operators of
 * parallelism 1 chains too: it has a single target, so the exchange
 * would only hash and copy every element into a ring to the same place;
 * chained, the keyed operator hashes its keys itself (sli_push() drops
 * the key hashes of an earlier exchange). Nodes are numbered in creation
 * order, which the fluent builder makes a topological order, so one pass
 * suffices.
 *
 * Workers: min(usable PUs, subtasks) unless set; subtask i of task t runs
 * on worker (first_subtask(t) + i) % workers, which gives each worker one
 * subtask of each task when workers == parallelism (pipelines stay on a
 * core and only exchanges cross cores).
 *
 * Threads: the thread that builds the job.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <sluice/sl_error.h>
#include <sluice/sl_log.h>

#include "sli_core.h"

void sli_plan_free(struct sli_plan *p)
{
	if (p == NULL)
		return;
	for (unsigned t = 0; t < p->ntasks; t++) {
		free(p->tasks[t].chain);
		free(p->tasks[t].name);
		free(p->tasks[t].in);
		free(p->tasks[t].out);
	}
	free(p->tasks);
	free(p->worker_pu);
	free(p->worker_node);
	free(p->subtask_worker);
	free(p->task_first);
	memset(p, 0, sizeof(*p));
}

static bool chains_to_input(const struct sli_node *n)
{
	const struct sli_edge *e;
	const struct sli_node *from;

	if (n->nin != 1 || n->chaining_disabled || n->new_chain)
		return false;
	e = n->in[0];
	from = e->from;
	return (e->part == SLI_PART_FORWARD || (e->part == SLI_PART_HASH && n->parallelism == 1)) &&
	       e->port == 0 && from->nout == 1 && from->parallelism == n->parallelism &&
	       !from->chaining_disabled && from->kind != SLI_SINK;
}

static int build_tasks(struct sl_job *job, struct sli_plan *p)
{
	p->tasks = calloc(job->nnodes, sizeof(*p->tasks));
	if (p->tasks == NULL)
		return -ENOMEM;
	for (unsigned i = 0; i < job->nnodes; i++) {
		struct sli_node *n = job->nodes[i];
		struct sli_task *t;

		if (chains_to_input(n)) {
			t = &p->tasks[n->in[0]->from->task];
		} else {
			t = &p->tasks[p->ntasks];
			t->id = (int)p->ntasks++;
			t->parallelism = n->parallelism;
			for (unsigned k = 0; k < n->nin; k++)
				if (sli_ptr_push(&t->in, &t->nin, n->in[k]) < 0)
					return -ENOMEM;
		}
		n->task = t->id;
		n->chain_pos = (int)t->nchain;
		if (sli_ptr_push(&t->chain, &t->nchain, n) < 0)
			return -ENOMEM;
	}
	/* Edges leaving a task: every edge whose target is in another task. */
	for (unsigned i = 0; i < job->nedges; i++) {
		struct sli_edge *e = job->edges[i];

		if (e->to->task != e->from->task &&
		    sli_ptr_push(&p->tasks[e->from->task].out, &p->tasks[e->from->task].nout, e) <
			0)
			return -ENOMEM;
	}
	return 0;
}

int sli_job_plan(struct sl_job *job, const struct sl_platform *platform, char *errbuf,
		 size_t errlen)
{
	struct sli_plan *p = &job->plan;
	unsigned ncpus = 0, nw;
	int rc;

	if (job->planned)
		return 0;
	if (!job->validated) {
		rc = sl_job_validate(job, errbuf, errlen);
		if (rc < 0)
			return rc;
	}
	for (unsigned i = 0; i < job->nedges; i++) {
		struct sli_edge *e = job->edges[i];

		if (e->part == SLI_PART_DEFAULT)
			e->part = e->from->parallelism == e->to->parallelism ? SLI_PART_FORWARD
									     : SLI_PART_REBALANCE;
	}
	memset(p, 0, sizeof(*p));
	rc = build_tasks(job, p);
	if (rc < 0)
		goto fail_nomem;
	p->task_first = calloc(p->ntasks, sizeof(unsigned));
	if (p->task_first == NULL)
		goto fail_nomem;
	/* Task names, as Flink writes them: "gen -> map -> filter". */
	for (unsigned t = 0; t < p->ntasks; t++) {
		struct sli_task *task = &p->tasks[t];
		size_t len = 1;
		char *c;

		for (unsigned k = 0; k < task->nchain; k++)
			len += strlen(task->chain[k]->name) + 4;
		task->name = c = malloc(len);
		if (c == NULL)
			goto fail_nomem;
		for (unsigned k = 0; k < task->nchain; k++)
			c += sprintf(c, "%s%s", k ? " -> " : "", task->chain[k]->name);
	}
	for (unsigned t = 0; t < p->ntasks; t++) {
		p->task_first[t] = p->nsubtasks;
		p->nsubtasks += p->tasks[t].parallelism;
	}

	if (platform != NULL && platform->ncpus != NULL)
		ncpus = platform->ncpus(platform->ctx);
	nw = job->workers;
	if (nw == 0) {
		nw = p->nsubtasks;
		if (ncpus > 0 && nw > ncpus)
			nw = ncpus;
	} else if (ncpus > 0 && nw > ncpus) {
		rc = sl_errbuf_set(errbuf, errlen, -ERANGE,
				   "%u workers requested but only %u usable cores (PUs): lower "
				   "--workers, or allow more CPUs (taskset/cgroup)",
				   nw, ncpus);
		goto fail;
	}
	if (nw > p->nsubtasks)
		nw = p->nsubtasks;
	p->nworkers = nw;
	p->worker_pu = malloc(nw * sizeof(int));
	p->worker_node = malloc(nw * sizeof(int));
	p->subtask_worker = malloc(p->nsubtasks * sizeof(int));
	if (p->worker_pu == NULL || p->worker_node == NULL || p->subtask_worker == NULL)
		goto fail_nomem;
	for (unsigned w = 0; w < nw; w++) {
		p->worker_pu[w] = -1;
		p->worker_node[w] = 0;
	}
	if (platform != NULL && platform->place != NULL) {
		rc = platform->place(platform->ctx, nw, p->worker_pu, p->worker_node, errbuf,
				     errlen);
		if (rc < 0)
			goto fail;
	}
	for (unsigned t = 0; t < p->ntasks; t++)
		for (unsigned i = 0; i < p->tasks[t].parallelism; i++)
			p->subtask_worker[p->task_first[t] + i] =
			    (int)((p->task_first[t] + i) % nw);
	job->planned = true;
	return 0;

fail_nomem:
	rc = sl_errbuf_set(errbuf, errlen, -ENOMEM, "out of memory while planning the job");
fail:
	sli_plan_free(p);
	return rc;
}

/* ------------------------------------------------------------ printing */

/* Channels of an exchange edge: forward is one per subtask, the rest N x M. */
static unsigned edge_channels(const struct sli_edge *e)
{
	if (e->part == SLI_PART_FORWARD)
		return e->from->parallelism;
	return e->from->parallelism * e->to->parallelism;
}

/* A two-input operator heads its task (it never chains to an input): its inputs by side. */
static bool two_input(const struct sli_node *n)
{
	return n->kind == SLI_WINDOW_JOIN || n->kind == SLI_INTERVAL_JOIN;
}

static const char *input_side(const struct sli_edge *e)
{
	if (!two_input(e->to))
		return "";
	return e->input ? " (right input)" : " (left input)";
}

static void print_text(const struct sl_job *job, const struct sli_plan *p, FILE *f)
{
	fprintf(f,
		"job %s: %u task%s, %u subtask%s on %u worker%s; max-parallelism %u, batch %u, "
		"ring %u\n",
		job->name, p->ntasks, p->ntasks == 1 ? "" : "s", p->nsubtasks,
		p->nsubtasks == 1 ? "" : "s", p->nworkers, p->nworkers == 1 ? "" : "s",
		job->max_parallelism, job->batch_size, job->ring_size);
	for (unsigned t = 0; t < p->ntasks; t++) {
		const struct sli_task *task = &p->tasks[t];

		fprintf(f, "task %u (parallelism %u):", t, task->parallelism);
		for (unsigned k = 0; k < task->nchain; k++)
			fprintf(f, "%s %s[%s]", k ? " ->" : "", task->chain[k]->name,
				sli_kind_name(task->chain[k]->kind));
		fputc('\n', f);
		for (unsigned k = 0; two_input(task->chain[0]) && k < task->nin; k++) {
			const struct sli_edge *e = task->in[k];

			fprintf(f, "  <- %s input: task %d (%s) %s, %u channel%s\n",
				e->input ? "right" : "left", e->from->task, e->from->name,
				sli_part_name(e->part), edge_channels(e),
				edge_channels(e) == 1 ? "" : "s");
		}
		for (unsigned k = 0; k < task->nout; k++) {
			const struct sli_edge *e = task->out[k];

			fprintf(f, "  -> task %d (%s) %s%s%s, %u channel%s\n", e->to->task,
				e->to->name, sli_part_name(e->part),
				e->port ? " [side output]" : "", input_side(e), edge_channels(e),
				edge_channels(e) == 1 ? "" : "s");
		}
		for (unsigned i = 0; i < task->parallelism; i++) {
			int w = p->subtask_worker[p->task_first[t] + i];

			fprintf(f, "  subtask %u/%u: worker %d", i, task->parallelism, w);
			if (p->worker_pu[w] >= 0)
				fprintf(f, ", core (PU) %d, NUMA node %d", p->worker_pu[w],
					p->worker_node[w]);
			else
				fputs(", not pinned", f);
			fputc('\n', f);
		}
	}
}

static void print_json(const struct sl_job *job, const struct sli_plan *p, FILE *f)
{
	fputs("{\"job\":", f);
	sl_fput_json_str(f, job->name);
	fprintf(f, ",\"max_parallelism\":%u,\"batch_size\":%u,\"ring_size\":%u,\"workers\":[",
		job->max_parallelism, job->batch_size, job->ring_size);
	for (unsigned w = 0; w < p->nworkers; w++)
		fprintf(f, "%s{\"id\":%u,\"pu\":%d,\"node\":%d}", w ? "," : "", w, p->worker_pu[w],
			p->worker_node[w]);
	fputs("],\"tasks\":[", f);
	for (unsigned t = 0; t < p->ntasks; t++) {
		const struct sli_task *task = &p->tasks[t];

		fprintf(f, "%s{\"id\":%u,\"parallelism\":%u,\"operators\":[", t ? "," : "", t,
			task->parallelism);
		for (unsigned k = 0; k < task->nchain; k++) {
			fprintf(f, "%s{\"name\":", k ? "," : "");
			sl_fput_json_str(f, task->chain[k]->name);
			fprintf(f, ",\"kind\":\"%s\"}", sli_kind_name(task->chain[k]->kind));
		}
		if (two_input(task->chain[0])) {
			fputs("],\"inputs\":[", f);
			for (unsigned k = 0; k < task->nin; k++)
				fprintf(f, "%s{\"from_task\":%d,\"side\":\"%s\"}", k ? "," : "",
					task->in[k]->from->task,
					task->in[k]->input ? "right" : "left");
		}
		fputs("],\"outputs\":[", f);
		for (unsigned k = 0; k < task->nout; k++) {
			const struct sli_edge *e = task->out[k];

			fprintf(f,
				"%s{\"to_task\":%d,\"partitioning\":\"%s\",\"side_output\":%s,"
				"\"channels\":%u}",
				k ? "," : "", e->to->task, sli_part_name(e->part),
				e->port ? "true" : "false", edge_channels(e));
		}
		fputs("],\"subtasks\":[", f);
		for (unsigned i = 0; i < task->parallelism; i++) {
			int w = p->subtask_worker[p->task_first[t] + i];

			fprintf(f, "%s{\"index\":%u,\"worker\":%d,\"pu\":%d,\"node\":%d}",
				i ? "," : "", i, w, p->worker_pu[w], p->worker_node[w]);
		}
		fputs("]}", f);
	}
	fputs("]}\n", f);
}

static void print_dot(const struct sl_job *job, const struct sli_plan *p, FILE *f)
{
	fputs("digraph ", f);
	sl_fput_json_str(f, job->name);
	fputs(" {\n  rankdir=LR;\n  node [shape=box];\n", f);
	for (unsigned t = 0; t < p->ntasks; t++) {
		const struct sli_task *task = &p->tasks[t];

		fprintf(f, "  t%u [label=\"task %u x%u\\n", t, t, task->parallelism);
		for (unsigned k = 0; k < task->nchain; k++) {
			/* Names are user text: keep only characters safe in a DOT label. */
			for (const char *c = task->chain[k]->name; *c; c++)
				fputc((*c == '"' || *c == '\\' || (unsigned char)*c < 0x20) ? '_'
											    : *c,
				      f);
			fputs(k + 1 < task->nchain ? " -> " : "", f);
		}
		fputs("\"];\n", f);
	}
	for (unsigned t = 0; t < p->ntasks; t++)
		for (unsigned k = 0; k < p->tasks[t].nout; k++) {
			const struct sli_edge *e = p->tasks[t].out[k];

			fprintf(f, "  t%u -> t%d [label=\"%s%s%s\"];\n", t, e->to->task,
				sli_part_name(e->part), e->port ? " (side)" : "", input_side(e));
		}
	fputs("}\n", f);
}

int sl_job_plan_print(struct sl_job *job, const struct sl_platform *platform, FILE *f,
		      enum sl_plan_format fmt, char *errbuf, size_t errlen)
{
	int rc;

	if (job == NULL || f == NULL)
		return sl_errbuf_set(errbuf, errlen, -EINVAL, "sl_job_plan_print: NULL argument");
	rc = sli_job_plan(job, platform, errbuf, errlen);
	if (rc < 0)
		return rc;
	switch (fmt) {
	case SL_PLAN_TEXT:
		print_text(job, &job->plan, f);
		break;
	case SL_PLAN_JSON:
		print_json(job, &job->plan, f);
		break;
	case SL_PLAN_DOT:
		print_dot(job, &job->plan, f);
		break;
	default:
		return sl_errbuf_set(errbuf, errlen, -EINVAL, "unknown plan format %d", (int)fmt);
	}
	if (fflush(f) != 0 || ferror(f))
		return sl_errbuf_set(errbuf, errlen, -EIO, "writing the plan failed");
	return 0;
}
