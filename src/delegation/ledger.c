/*
 * The ledger writer; see ledger.h. A mutex-protected FIFO and one thread.
 * The thread sleeps on a condition variable while the queue is empty,
 * detaches up to LEDGER_BATCH_MAX jobs at once, and runs them outside the
 * lock, so submitters never wait for a commit.
 */
#include "delegation/ledger.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "core/err.h"
#include "core/banned.h"

struct ledger {
	struct store *st;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct ledger_job *head, *tail;
	int stopping;
	atomic_uint_fast64_t batches, jobs;
};

struct waiter {
	struct ledger_job job;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int finished;
};

/* Detach up to LEDGER_BATCH_MAX jobs; NULL when stopping and empty. */
static struct ledger_job *take(struct ledger *l, size_t *n)
{
	struct ledger_job *first, *j;

	pthread_mutex_lock(&l->mu);
	while (!l->head && !l->stopping)
		pthread_cond_wait(&l->cv, &l->mu);
	first = l->head;
	*n = 0;
	for (j = first; j && *n < LEDGER_BATCH_MAX - 1; j = j->next)
		(*n)++;
	if (j) {
		(*n)++;
		l->head = j->next;
		j->next = NULL;
	} else {
		l->head = NULL;
	}
	if (!l->head)
		l->tail = NULL;
	pthread_mutex_unlock(&l->mu);
	return first;
}

static void *writer(void *arg)
{
	struct ledger *l = arg;
	struct ledger_op ops[LEDGER_BATCH_MAX];
	struct ledger_job *batch, *j, *next;
	size_t n, i;

	for (;;) {
		batch = take(l, &n);
		if (!batch)
			break;
		for (i = 0, j = batch; j; j = j->next, i++)
			ops[i] = j->op;
		l->st->ops->ledger_apply(l->st, ops, n);
		atomic_fetch_add(&l->batches, 1);
		atomic_fetch_add(&l->jobs, n);
		for (i = 0, j = batch; j; j = next, i++) {
			next = j->next;
			j->op = ops[i];
			j->done(j);
		}
	}
	return NULL;
}

int ledger_new(struct store *st, struct ledger **out)
{
	struct ledger *l = calloc(1, sizeof(*l));

	*out = NULL;
	if (!l)
		return E(INTERNAL);
	l->st = st;
	pthread_mutex_init(&l->mu, NULL);
	pthread_cond_init(&l->cv, NULL);
	if (pthread_create(&l->thread, NULL, writer, l)) {
		pthread_mutex_destroy(&l->mu);
		pthread_cond_destroy(&l->cv);
		free(l);
		return E(INTERNAL);
	}
	*out = l;
	return 0;
}

int ledger_submit(struct ledger *l, struct ledger_job *job)
{
	int rc = 0;

	job->next = NULL;
	pthread_mutex_lock(&l->mu);
	if (l->stopping) {
		rc = E(UNAVAILABLE);
	} else {
		if (l->tail)
			l->tail->next = job;
		else
			l->head = job;
		l->tail = job;
		pthread_cond_signal(&l->cv);
	}
	pthread_mutex_unlock(&l->mu);
	return rc;
}

static void wake(struct ledger_job *job)
{
	struct waiter *w = (struct waiter *)job; /* job is w's first member */

	pthread_mutex_lock(&w->mu);
	w->finished = 1;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

int ledger_run(struct ledger *l, struct ledger_op *op)
{
	struct waiter w = {.job = {.op = *op, .done = wake}};
	int rc;

	pthread_mutex_init(&w.mu, NULL);
	pthread_cond_init(&w.cv, NULL);
	rc = ledger_submit(l, &w.job);
	if (!rc) {
		pthread_mutex_lock(&w.mu);
		while (!w.finished)
			pthread_cond_wait(&w.cv, &w.mu);
		pthread_mutex_unlock(&w.mu);
		*op = w.job.op;
		rc = op->rc;
	}
	pthread_mutex_destroy(&w.mu);
	pthread_cond_destroy(&w.cv);
	return rc;
}

void ledger_stats(struct ledger *l, uint64_t *batches, uint64_t *jobs)
{
	*batches = atomic_load(&l->batches);
	*jobs = atomic_load(&l->jobs);
}

void ledger_free(struct ledger *l)
{
	if (!l)
		return;
	pthread_mutex_lock(&l->mu);
	l->stopping = 1;
	pthread_cond_signal(&l->cv);
	pthread_mutex_unlock(&l->mu);
	pthread_join(l->thread, NULL);
	pthread_mutex_destroy(&l->mu);
	pthread_cond_destroy(&l->cv);
	free(l);
}
