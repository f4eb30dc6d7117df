/* struct delegator, shared by delegator.c and flow.c only. */
#ifndef NEXRA_DELEGATION_DELEGATOR_INT_H
#define NEXRA_DELEGATION_DELEGATOR_INT_H

#include <pthread.h>
#include <stdatomic.h>

#include "delegation/delegator.h"
#include "delegation/ledger.h"
#include "delegation/outbound.h"

struct callback; /* a completion callback waiting for its next attempt */

struct delegator {
	struct app *app;
	struct ledger *ledger;
	struct outbound *out;
	pthread_rwlock_t out_lock; /* submissions vs. shutdown of out */
	int out_closed;            /* under out_lock: no more submissions */
	pthread_t sweeper;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int stopping;
	struct callback *retry; /* callbacks to try again, guarded by mu */
	atomic_uint_fast64_t opened, completed, failed, timed_out, blocked, pending, expired;
	atomic_uint_fast64_t callbacks_sent, callbacks_failed;
};

/* outbound_submit unless shutdown has closed the client: every outbound
 * submission goes through here (no submit can race the client's free). */
int delegator_submit(struct delegator *dg, const struct outbound_request *req);

/* Send (or resend) a completion callback; takes ownership of cb. */
void callback_send(struct delegator *dg, struct callback *cb);
/* A new callback carrying body (copied) to url, signed with secret. */
struct callback *callback_new(const char *url, const char *delegation_id, const char *body,
			      size_t body_len, const char *secret, size_t secret_len);

#endif
