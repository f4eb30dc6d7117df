/*
 * Agent registry endpoints (docs/api.md "Agents"). Every read and write is
 * scoped by the caller's org, so another org's agent is indistinguishable
 * from a missing one. The webhook secret is sealed before it reaches the
 * store, bound to its org and agent id.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"
#include "core/err.h"
#include "core/json.h"
#include "core/jsonw.h"
#include "crypto/seal.h"
#include "discovery/discovery.h"
#include "registry/agent.h"
#include "registry/api.h"
#include "serve/app.h"
#include "core/banned.h"

#define INITIAL_TRUST 0.5

/* One body for "no such agent" and "another org's agent" (tenancy): the
 * message does not even echo the id. */
static int not_found(struct req *r)
{
	return req_fail(r, E(NOT_FOUND), "agent not found");
}

static int store_fail(struct req *r, int rc, const char *what)
{
	return req_fail(r, rc, "%s failed: %s", what, store_last_error());
}

/* Parse and validate the body, seal the secret: a ready definition. */
static int read_definition(struct req *r, const char *path_id, struct agent *a)
{
	struct jerr e = {{0}, {0}};
	const char *secret = NULL;
	char ad[ID_MAX + AGENT_ID_MAX + 16], emb[EMBEDDING_ID_LEN];
	json_t *body = NULL;
	int rc = req_json_body(r, &body);

	if (rc)
		return rc;
	rc = agent_from_json(body, path_id, r->app->cfg->dev, a, &secret, &e);
	if (rc) {
		json_decref(body);
		if (rc == E(VALIDATION))
			return req_fail_jerr(r, &e);
		return req_fail(r, rc, "out of memory");
	}
	snprintf(a->org_id, sizeof(a->org_id), "%s", r->auth.org.org_id);
	snprintf(ad, sizeof(ad), "agent:%s/%s", a->org_id, a->agent_id);
	rc = seal(r->app->master_key, secret, strlen(secret), ad, &a->secret_sealed,
		  &a->secret_sealed_len);
	json_decref(body);
	if (rc) {
		agent_release(a);
		return req_fail(r, rc, "sealing the webhook secret failed");
	}
	a->updated_at = r->now;
	/* a new id for every definition: the text it embeds may have changed */
	if (embedding_id_new(emb) || !(a->embedding_id = strdup(emb))) {
		agent_release(a);
		return req_fail(r, E(INTERNAL), "out of memory");
	}
	return 0;
}

/* Answer with the agent as stored now. */
static int reply_agent(struct req *r, const char *agent_id, int status)
{
	struct store *st = r->app->store;
	struct agent a;
	struct jsonw jw;
	int rc;

	if (!agent_id_valid(agent_id))
		return not_found(r);
	rc = st->ops->agent_get(st, r->auth.org.org_id, agent_id, &a);
	if (rc == E(NOT_FOUND))
		return not_found(r);
	if (rc)
		return store_fail(r, rc, "reading the agent");
	jw_init(&jw, &r->out);
	agent_write_json(&jw, &a);
	agent_release(&a);
	return jw.rc ? req_fail(r, jw.rc, "response too large") : req_ok_out(r, status);
}

int api_agent_register(struct req *r)
{
	struct store *st = r->app->store;
	struct agent a;
	struct jsonw jw;
	int rc = read_definition(r, NULL, &a);

	if (rc)
		return rc;
	snprintf(a.status, sizeof(a.status), "probationary");
	a.trust_score = INITIAL_TRUST;
	a.registered_at = r->now;
	rc = st->ops->agent_insert(st, &a);
	if (rc == E(CONFLICT))
		rc = req_fail(r, rc, "agent %s already exists in this organization; use PUT /v1/agents/%s to update it",
			      a.agent_id, a.agent_id);
	else if (rc)
		rc = store_fail(r, rc, "registering the agent");
	if (!rc) {
		discovery_agent_written(r->app->disc, a.org_id, a.agent_id, a.embedding_id);
		jw_init(&jw, &r->out);
		jw_obj_open(&jw);
		jw_kstr(&jw, "agent_id", a.agent_id);
		jw_kstr(&jw, "status", a.status);
		jw_kstr(&jw, "embedding_id", a.embedding_id);
		jw_ktime(&jw, "registered_at", a.registered_at);
		jw_obj_close(&jw);
		rc = jw.rc ? jw.rc : req_ok_out(r, 201);
	}
	agent_release(&a);
	return rc;
}

int api_agent_update(struct req *r)
{
	struct store *st = r->app->store;
	struct agent a;
	int rc;

	if (!agent_id_valid(r->params[0]))
		return not_found(r);
	rc = read_definition(r, r->params[0], &a);
	if (rc)
		return rc;
	rc = st->ops->agent_update(st, &a);
	if (!rc)
		discovery_agent_written(r->app->disc, a.org_id, a.agent_id, a.embedding_id);
	agent_release(&a);
	if (rc == E(NOT_FOUND))
		return not_found(r);
	if (rc)
		return store_fail(r, rc, "updating the agent");
	return reply_agent(r, r->params[0], 200);
}

int api_agent_get(struct req *r)
{
	return reply_agent(r, r->params[0], 200);
}

static int list_one(void *ctx, const struct agent *a)
{
	struct req_list *l = ctx;

	if (req_list_item(l))
		agent_write_json(&l->jw, a);
	return l->jw.rc;
}

int api_agent_list(struct req *r)
{
	struct store *st = r->app->store;
	struct agent_filter f = {.org_id = r->auth.org.org_id};
	struct req_list l;
	int rc = req_query_enum(r, "status", agent_statuses, &f.status);

	if (!rc)
		rc = req_query_enum(r, "capability_type", agent_capability_types, &f.capability_type);
	if (!rc)
		rc = req_list_begin(r, &l);
	if (rc)
		return rc;
	rc = st->ops->agent_list(st, &f, l.limit + 1, l.offset, list_one, &l);
	return req_list_end(r, &l, rc, "listing agents");
}

static int set_paused(struct req *r, int paused)
{
	struct store *st = r->app->store;
	int rc;

	if (!agent_id_valid(r->params[0]))
		return not_found(r);
	rc = st->ops->agent_set_paused(st, r->auth.org.org_id, r->params[0], paused, r->now);
	if (rc == E(NOT_FOUND))
		return not_found(r);
	if (rc)
		return store_fail(r, rc, paused ? "pausing the agent" : "activating the agent");
	discovery_agent_written(r->app->disc, r->auth.org.org_id, r->params[0], NULL);
	return reply_agent(r, r->params[0], 200);
}

int api_agent_pause(struct req *r)
{
	return set_paused(r, 1);
}

int api_agent_activate(struct req *r)
{
	return set_paused(r, 0);
}
