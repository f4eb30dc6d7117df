/* struct notifier and its send jobs, shared by notifier.c and notify_send.c only. */
#ifndef NEXRA_APPROVALS_NOTIFIER_INT_H
#define NEXRA_APPROVALS_NOTIFIER_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>

#include "approvals/notifier.h"
#include "core/rand.h"
#include "delegation/outbound.h"
#include "store/store.h"

/* One claimed delivery on its way out. */
struct send_job {
	struct send_job *next;
	struct notifier *owner; /* set by send_start */
	char delivery_id[ID_MAX];
	char org_id[ID_MAX];
	char channel_id[ID_MAX];
	char kind[NOTIFY_KIND_MAX];
	char event[NOTIFY_EVENT_MAX];
	int64_t attempts; /* this one included */
	char *payload;
	char *target;     /* email address or webhook URL */
	char *secret;     /* unsealed: the webhook secret, or the Slack URL */
	size_t secret_len;
	/* outcome */
	int ok;
	char error[256];
};

struct notifier {
	struct app *app;
	struct outbound *out;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int stopping, poked;
	struct send_job *done; /* finished sends, under mu */
	int in_flight;         /* submitted to out, not yet in done; under mu */
	int64_t alert_since;   /* budget check watermark (thread only) */
	atomic_uint_fast64_t enqueued_approvals, alerts, sent, retried, dead;
};

/* A job from a claimed row: copies, with the channel secret unsealed. */
int send_job_new(const struct notify_delivery *d, const unsigned char *master_key,
		 struct send_job **out);
void send_job_free(struct send_job *j);

/* Send j. Its outcome lands on n->done (now for email, from the outbound
 * thread for HTTP). Takes ownership of j. */
void send_start(struct notifier *n, struct send_job *j);

#endif
