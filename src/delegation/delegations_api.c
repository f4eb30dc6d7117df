/*
 * Reading delegations: GET /v1/delegations/{delegation_id} and
 * GET /v1/delegations (filters agent_id, status, from, to; limit/offset;
 * newest first). Another org's delegation answers like a missing one.
 */
#include <stdint.h>
#include <string.h>

#include "auth/auth.h"
#include "core/err.h"
#include "delegation/api.h"
#include "delegation/delegator.h"
#include "delegation/render.h"
#include "serve/app.h"
#include "core/banned.h"

static const char *const statuses[] = {"pending_approval", "dispatched", "completed", "failed",
				       "timed_out", "blocked", "expired", NULL};

int api_delegation_get(struct req *r)
{
	struct store *st = r->app->store;
	const char *id = r->params[0];
	struct delegation d;
	struct jsonw jw;
	int rc;

	memset(&d, 0, sizeof(d));
	rc = rand_id_valid(id, "del_", DELEGATION_ID_BYTES)
		     ? st->ops->delegation_get(st, r->auth.org.org_id, id, &d)
		     : E(NOT_FOUND);
	if (rc == E(NOT_FOUND))
		return req_fail(r, rc, "delegation %s not found", id);
	if (rc)
		return req_fail(r, rc, "reading the delegation failed: %s", store_last_error());
	jw_init(&jw, &r->out);
	delegation_write(&jw, &d);
	delegation_release(&d);
	return jw.rc ? req_fail(r, jw.rc, "response too large") : req_ok_out(r, 200);
}

static int list_one(void *ctx, const struct delegation *d)
{
	struct req_list *l = ctx;

	if (req_list_item(l))
		delegation_write(&l->jw, d);
	return l->jw.rc;
}

int api_delegation_list(struct req *r)
{
	struct store *st = r->app->store;
	struct delegation_filter f = {.org_id = r->auth.org.org_id, .from = 0, .to = INT64_MAX};
	struct req_list l;
	int rc = req_query_enum(r, "status", statuses, &f.status);

	f.agent_id = req_query(r, "agent_id");
	if (!rc && f.agent_id && !agent_id_valid(f.agent_id))
		rc = req_fail_details(r, E(VALIDATION), json_pack("{ss}", "field", "agent_id"),
				      "agent_id: not a valid agent id");
	if (!rc)
		rc = req_query_time(r, "from", &f.from);
	if (!rc)
		rc = req_query_time(r, "to", &f.to);
	if (!rc && f.from >= f.to)
		rc = req_fail_details(r, E(VALIDATION), json_pack("{ss}", "field", "from"),
				      "from: must be before to");
	if (!rc)
		rc = req_list_begin(r, &l);
	if (rc)
		return rc;
	rc = st->ops->delegation_list(st, &f, l.limit + 1, l.offset, list_one, &l);
	return req_list_end(r, &l, rc, "listing delegations");
}
