/*
 * GET /v1/billing/events?status=pending|sent|dead and
 * POST /v1/billing/events/{billing_id}/retry: the org's billing outbox,
 * newest first, with attempts and the last error; a dead event re-queued.
 * Another org's event answers like a missing one.
 */
#include <string.h>

#include "auth/auth.h"
#include "billing/api.h"
#include "core/err.h"
#include "core/jsonw.h"
#include "delegation/delegator.h"
#include "serve/app.h"
#include "core/banned.h"

static const char *const states[] = {"pending", "sent", "dead", NULL};

static void write_event(struct jsonw *jw, const struct billing_event *e)
{
	jw_obj_open(jw);
	jw_kstr(jw, "billing_id", e->billing_id);
	jw_kstr(jw, "delegation_id", e->delegation_id);
	jw_kstr(jw, "status", e->state);
	jw_kstr(jw, "caller_agent_id", e->caller_agent_id);
	jw_kstr(jw, "callee_agent_id", e->callee_agent_id[0] ? e->callee_agent_id : NULL);
	jw_key(jw, "amount_usd");
	jw_money(jw, e->amount_micros);
	jw_kint(jw, "value", e->amount_micros);
	jw_kstr(jw, "currency", e->currency);
	jw_kstr(jw, "period", e->period);
	jw_kint(jw, "attempts", e->attempts);
	jw_kstr(jw, "last_error", e->last_error[0] ? e->last_error : NULL);
	jw_ktime(jw, "next_attempt_at", strcmp(e->state, "pending") ? 0 : e->next_attempt_at);
	jw_ktime(jw, "created_at", e->created_at);
	jw_ktime(jw, "sent_at", e->sent_at);
	jw_obj_close(jw);
}

static int list_one(void *ctx, const struct billing_event *e)
{
	struct req_list *l = ctx;

	if (req_list_item(l))
		write_event(&l->jw, e);
	return l->jw.rc;
}

int api_billing_event_list(struct req *r)
{
	struct store *st = r->app->store;
	const char *state = NULL;
	struct req_list l;
	int rc = req_query_enum(r, "status", states, &state);

	if (!rc)
		rc = req_list_begin(r, &l);
	if (rc)
		return rc;
	rc = st->ops->billing_list(st, r->auth.org.org_id, state, l.limit + 1, l.offset, list_one,
				   &l);
	return req_list_end(r, &l, rc, "listing billing events");
}

int api_billing_event_retry(struct req *r)
{
	struct store *st = r->app->store;
	const char *id = r->params[0];
	struct billing_event e;
	struct jsonw jw;
	int rc = auth_require_live(r, "retrying billing events");

	if (rc)
		return rc;
	memset(&e, 0, sizeof(e));
	rc = !strncmp(id, "bill_", 5) && rand_id_valid(id + 5, "del_", DELEGATION_ID_BYTES)
		     ? st->ops->billing_retry(st, r->auth.org.org_id, id, r->now, &e)
		     : E(NOT_FOUND);
	if (rc == E(NOT_FOUND))
		return req_fail(r, rc, "billing event %s not found", id);
	if (rc == E(CONFLICT))
		return req_fail(r, rc, "billing event %s is %s: only dead events can be retried", id,
				e.state);
	if (rc)
		return req_fail(r, rc, "retrying the billing event failed: %s", store_last_error());
	jw_init(&jw, &r->out);
	write_event(&jw, &e);
	return jw.rc ? req_fail(r, jw.rc, "response too large") : req_ok_out(r, 200);
}
