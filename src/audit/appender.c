/* The background tree appender; see appender.h. */
#include "audit/appender.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "audit/log.h"
#include "core/err.h"
#include "core/log.h"
#include "core/timefmt.h"
#include "core/banned.h"

#define LAGGING_MAX 64 /* orgs per round */

struct audit_appender {
	struct store *store;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int stop;
};

struct round {
	struct audit_appender *a;
	int failed;
};

static int append_org(void *ctx, const char *org_id)
{
	struct round *r = ctx;
	int64_t size;
	int appended, rc;

	rc = r->a->store->ops->audit_extend(r->a->store, org_id, AUDIT_BATCH, time_now_unix(), &size,
					    &appended);
	if (rc && !r->failed) {
		log_msg("error", "audit", "appending to the audit tree of %s failed: %s", org_id,
			store_last_error());
		r->failed = 1;
	}
	return 0;
}

static int stopping(struct audit_appender *a, int wait_ms)
{
	struct timespec until;
	int stop;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += wait_ms / 1000;
	until.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&a->mu);
	while (!a->stop && wait_ms > 0 &&
	       pthread_cond_timedwait(&a->cv, &a->mu, &until) != ETIMEDOUT)
		;
	stop = a->stop;
	pthread_mutex_unlock(&a->mu);
	return stop;
}

static void *run(void *arg)
{
	struct audit_appender *a = arg;

	while (!stopping(a, AUDIT_APPEND_INTERVAL_MS)) {
		struct round r = {.a = a, .failed = 0};

		a->store->ops->audit_lagging(a->store, LAGGING_MAX, append_org, &r);
	}
	return NULL;
}

int audit_appender_new(struct store *s, struct audit_appender **out)
{
	struct audit_appender *a = calloc(1, sizeof(*a));

	*out = NULL;
	if (!a)
		return E(INTERNAL);
	a->store = s;
	pthread_mutex_init(&a->mu, NULL);
	pthread_cond_init(&a->cv, NULL);
	if (pthread_create(&a->thread, NULL, run, a)) {
		pthread_mutex_destroy(&a->mu);
		pthread_cond_destroy(&a->cv);
		free(a);
		return E(INTERNAL);
	}
	*out = a;
	return 0;
}

void audit_appender_free(struct audit_appender *a)
{
	if (!a)
		return;
	pthread_mutex_lock(&a->mu);
	a->stop = 1;
	pthread_cond_signal(&a->cv);
	pthread_mutex_unlock(&a->mu);
	pthread_join(a->thread, NULL);
	pthread_mutex_destroy(&a->mu);
	pthread_cond_destroy(&a->cv);
	free(a);
}
