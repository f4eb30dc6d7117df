/*
 * Policy endpoints (docs/policies.md "API"): upload (a name that exists
 * gets its next version), list, read with versions, read an old version,
 * patch enabled/priority, and delete, which disables and keeps every
 * version so the audit log can always name the one that decided. A policy
 * text is parsed before anything is stored: a document with any error is
 * a 400 whose message gives line, column and key, and writes nothing.
 * Changing policies needs a live key (test keys only get decisions).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"
#include "core/err.h"
#include "core/json.h"
#include "core/jsonw.h"
#include "policy/api.h"
#include "core/timefmt.h"
#include "policy/orgstack.h"
#include "policy/policy.h"
#include "policy/simulate.h"
#include "serve/app.h"
#include "core/banned.h"

static const char *const upload_fields[] = {"name", "yaml", "priority", "enabled", NULL};
static const char *const patch_fields[] = {"enabled", "priority", NULL};

static int not_found(struct req *r)
{
	return req_fail(r, E(NOT_FOUND), "policy not found");
}

static void write_policy(struct jsonw *jw, const struct policy *p)
{
	jw_kstr(jw, "policy_id", p->policy_id);
	jw_kstr(jw, "name", p->name);
	jw_kint(jw, "version", p->version);
	jw_kint(jw, "priority", p->priority);
	jw_kbool(jw, "enabled", p->enabled);
	jw_ktime(jw, "created_at", p->created_at);
	jw_ktime(jw, "updated_at", p->updated_at);
}

static int reply_policy(struct req *r, const struct policy *p, int status)
{
	struct jsonw jw;

	jw_init(&jw, &r->out);
	jw_obj_open(&jw);
	write_policy(&jw, p);
	jw_obj_close(&jw);
	return jw.rc ? req_fail(r, jw.rc, "response too large") : req_ok_out(r, status);
}

/* The "yaml" field parsed; on error the request is answered 400 with the
 * line, column and key in details, the same for upload and simulate. */
static int parse_yaml(struct req *r, const char *yaml, struct policy_doc **doc)
{
	struct policy_err perr;

	if (strlen(yaml) > POLICY_MAX_BYTES)
		return req_fail_details(r, E(VALIDATION), json_pack("{ss}", "field", "yaml"),
					"yaml: must be at most %d bytes", POLICY_MAX_BYTES);
	if (policy_parse(yaml, strlen(yaml), doc, &perr))
		return req_fail_details(r, E(VALIDATION),
					json_pack("{ss si si ss}", "field", "yaml", "line", perr.line,
						  "column", perr.col, "key", perr.path),
					"yaml: %s", perr.message);
	return 0;
}

int api_policy_upload(struct req *r)
{
	struct store *st = r->app->store;
	struct jerr e = {{0}, {0}};
	struct policy_doc *doc = NULL;
	struct policy p = {.yaml = NULL};
	json_t *body = NULL;
	const char *name = NULL, *yaml = NULL;
	int64_t api_prio = 0, prio = 0;
	int api_enabled = 1, enabled = 1, rc, has_prio, has_enabled;
	char id[ID_MAX];

	rc = auth_require_live(r, "changing policies");
	if (!rc)
		rc = req_json_body(r, &body);
	if (rc)
		return rc;
	rc = json_only_keys(body, "", upload_fields, &e);
	if (!rc)
		rc = json_get_string(body, "", "name", 1, 1, POLICY_NAME_MAX, &name, &e);
	if (!rc)
		rc = json_get_string(body, "", "yaml", 1, 1, POLICY_MAX_BYTES, &yaml, &e);
	has_prio = rc ? 0 : json_get_int(body, "", "priority", 0, POLICY_PRIORITY_MIN,
					 POLICY_PRIORITY_MAX, &api_prio, &e);
	if (has_prio < 0)
		rc = has_prio;
	has_enabled = rc ? 0 : json_get_bool(body, "", "enabled", 0, &api_enabled, &e);
	if (has_enabled < 0)
		rc = has_enabled;
	if (rc) {
		json_decref(body);
		return req_fail_jerr(r, &e);
	}
	rc = parse_yaml(r, yaml, &doc);
	if (rc) {
		json_decref(body);
		return rc;
	}
	policy_doc_meta(doc, has_prio == 0 ? &api_prio : NULL,
			has_enabled == 0 ? &api_enabled : NULL, &prio, &enabled);
	policy_doc_free(doc);
	rc = rand_id(id, "pol_", 8);
	if (!rc)
		rc = st->ops->policy_put(st, r->auth.org.org_id, name, yaml, (int)prio, enabled,
					 r->now, id, &p);
	json_decref(body);
	if (rc)
		return req_fail(r, rc, "storing the policy failed: %s", store_last_error());
	rc = reply_policy(r, &p, 201);
	policy_release(&p);
	return rc;
}

static int list_one(void *ctx, const struct policy *p)
{
	struct req_list *l = ctx;

	if (req_list_item(l)) {
		jw_obj_open(&l->jw);
		write_policy(&l->jw, p);
		jw_obj_close(&l->jw);
	}
	return l->jw.rc;
}

int api_policy_list(struct req *r)
{
	struct store *st = r->app->store;
	struct req_list l;
	int rc = req_list_begin(r, &l);

	if (rc)
		return rc;
	rc = st->ops->policy_list(st, r->auth.org.org_id, l.limit + 1, l.offset, list_one, &l);
	return req_list_end(r, &l, rc, "listing policies");
}

static int version_one(void *ctx, int version, int64_t created_at)
{
	struct jsonw *jw = ctx;

	if (version > 1)
		jw_raw(jw, ",");
	jw_obj_open(jw);
	jw_kint(jw, "version", version);
	jw_ktime(jw, "created_at", created_at);
	jw_obj_close(jw);
	return jw->rc;
}

int api_policy_get(struct req *r)
{
	struct store *st = r->app->store;
	const char *id = r->params[0];
	struct policy p = {.yaml = NULL};
	struct jsonw jw;
	int rc;

	if (!rand_id_valid(id, "pol_", 8))
		return not_found(r);
	rc = st->ops->policy_get(st, r->auth.org.org_id, id, &p);
	if (rc == E(NOT_FOUND))
		return not_found(r);
	if (rc)
		return req_fail(r, rc, "reading the policy failed: %s", store_last_error());
	jw_init(&jw, &r->out);
	jw_obj_open(&jw);
	write_policy(&jw, &p);
	jw_kstr(&jw, "yaml", p.yaml);
	jw_key(&jw, "versions");
	jw_raw(&jw, "[");
	rc = st->ops->policy_versions(st, r->auth.org.org_id, id, version_one, &jw);
	jw_raw(&jw, "]");
	jw_obj_close(&jw);
	policy_release(&p);
	if (rc || jw.rc)
		return req_fail(r, rc ? rc : jw.rc, "reading versions failed: %s",
				store_last_error());
	return req_ok_out(r, 200);
}

int api_policy_version(struct req *r)
{
	struct store *st = r->app->store;
	const char *id = r->params[0], *vs = r->params[1];
	char *yaml = NULL, *end = NULL;
	long v = strtol(vs, &end, 10);
	struct jsonw jw;
	int rc;

	if (!rand_id_valid(id, "pol_", 8) || !*vs || *end || v < 1 || v > 1000000000L)
		return not_found(r);
	rc = st->ops->policy_version_yaml(st, r->auth.org.org_id, id, (int)v, &yaml);
	if (rc == E(NOT_FOUND))
		return req_fail(r, rc, "policy version not found");
	if (rc)
		return req_fail(r, rc, "reading the version failed: %s", store_last_error());
	jw_init(&jw, &r->out);
	jw_obj_open(&jw);
	jw_kstr(&jw, "policy_id", id);
	jw_kint(&jw, "version", v);
	jw_kstr(&jw, "yaml", yaml);
	jw_obj_close(&jw);
	free(yaml);
	return jw.rc ? req_fail(r, jw.rc, "response too large") : req_ok_out(r, 200);
}

/* Apply a change to enabled/priority and answer with the policy. */
static int patch(struct req *r, const int *enabled, const int *priority)
{
	struct store *st = r->app->store;
	const char *id = r->params[0];
	struct policy p = {.yaml = NULL};
	int rc;

	if (!rand_id_valid(id, "pol_", 8))
		return not_found(r);
	rc = st->ops->policy_patch(st, r->auth.org.org_id, id, enabled, priority, r->now);
	if (!rc)
		rc = st->ops->policy_get(st, r->auth.org.org_id, id, &p);
	if (rc == E(NOT_FOUND))
		return not_found(r);
	if (rc)
		return req_fail(r, rc, "updating the policy failed: %s", store_last_error());
	rc = reply_policy(r, &p, 200);
	policy_release(&p);
	return rc;
}

int api_policy_patch(struct req *r)
{
	struct jerr e = {{0}, {0}};
	json_t *body = NULL;
	int64_t prio = 0;
	int enabled = 0, rc, has_enabled, has_prio, p32;

	rc = auth_require_live(r, "changing policies");
	if (!rc)
		rc = req_json_body(r, &body);
	if (rc)
		return rc;
	rc = json_only_keys(body, "", patch_fields, &e);
	has_enabled = rc ? 0 : json_get_bool(body, "", "enabled", 0, &enabled, &e);
	has_prio = rc || has_enabled < 0 ? 0 : json_get_int(body, "", "priority", 0,
							   POLICY_PRIORITY_MIN,
							   POLICY_PRIORITY_MAX, &prio, &e);
	json_decref(body);
	if (rc || has_enabled < 0 || has_prio < 0)
		return req_fail_jerr(r, &e);
	if (has_enabled == 1 && has_prio == 1)
		return req_fail_details(r, E(VALIDATION), json_pack("{ss}", "field", "body"),
					"body: give enabled and/or priority");
	p32 = (int)prio;
	return patch(r, has_enabled == 0 ? &enabled : NULL, has_prio == 0 ? &p32 : NULL);
}

int api_policy_delete(struct req *r)
{
	int off = 0, rc = auth_require_live(r, "changing policies");

	return rc ? rc : patch(r, &off, NULL);
}

/* ---- POST /v1/policies/simulate ---------------------------------------- */

#define SIM_DEFAULT_WINDOW (30 * 86400) /* from: 30 days before to */
#define SIM_DEFAULT_LIMIT 10000
#define SIM_MAX_LIMIT 100000

static const char *const sim_fields[] = {"yaml", "priority", "from", "to", "limit", NULL};

struct sim_ctx {
	const struct policy_stack *now, *with;
	struct policy_sim *sim;
};

static int sim_one(void *ctx, const struct delegation_record *d)
{
	struct sim_ctx *c = ctx;

	return policy_simulate_one(c->now, c->with, d, c->sim);
}

static int sim_time(struct req *r, const json_t *body, const char *key, int64_t dflt,
		    int64_t *out)
{
	struct jerr e = {{0}, {0}};
	const char *s = NULL;
	int rc = json_get_string(body, "", key, 0, 1, 64, &s, &e);

	*out = dflt;
	if (rc < 0)
		return req_fail_details(r, rc, json_pack("{ss}", "field", key), "%s", e.message);
	if (rc == 0 && time_parse_rfc3339(s, out))
		return req_fail_details(r, E(VALIDATION), json_pack("{ss}", "field", key),
					"%s: expected an RFC 3339 UTC time like 2026-03-13T21:00:00Z",
					key);
	return 0;
}

static void write_sim(struct jsonw *jw, const struct policy_sim *sim, int64_t from, int64_t to,
		      int truncated)
{
	char k[64];

	jw_obj_open(jw);
	jw_ktime(jw, "from", from);
	jw_ktime(jw, "to", to);
	jw_kint(jw, "examined", (int64_t)sim->examined);
	jw_kint(jw, "changed", (int64_t)sim->changed);
	jw_kbool(jw, "truncated", truncated);
	jw_key(jw, "transitions");
	jw_obj_open(jw);
	for (int a = 0; a < 3; a++)
		for (int b = 0; b < 3; b++) {
			if (a == b || !sim->transitions[a][b])
				continue;
			snprintf(k, sizeof(k), "%s->%s", policy_verdict_name((enum policy_verdict)a),
				 policy_verdict_name((enum policy_verdict)b));
			jw_kint(jw, k, (int64_t)sim->transitions[a][b]);
		}
	jw_obj_close(jw);
	jw_key(jw, "changes");
	jw_raw(jw, "[");
	for (size_t i = 0; i < sim->nchanges; i++) {
		if (i)
			jw_raw(jw, ",");
		jw_obj_open(jw);
		jw_kstr(jw, "delegation_id", sim->changes[i].delegation_id);
		jw_ktime(jw, "created_at", sim->changes[i].created_at);
		jw_kstr(jw, "before", policy_verdict_name(sim->changes[i].before));
		jw_kstr(jw, "after", policy_verdict_name(sim->changes[i].after));
		jw_obj_close(jw);
	}
	jw_raw(jw, "]");
	jw_obj_close(jw);
}

int api_policy_simulate(struct req *r)
{
	struct store *st = r->app->store;
	struct jerr e = {{0}, {0}};
	struct policy_doc *doc = NULL;
	struct policy_stack *now = NULL, *with = NULL;
	struct policy_sim *sim = NULL;
	struct policy_meta meta = {.policy_id = "candidate", .version = 1, .enabled = 1,
				   .created = INT64_MAX};
	const char *yaml = NULL;
	int64_t api_prio = 0, prio = 0, from, to, limit = SIM_DEFAULT_LIMIT;
	int enabled = 1, rc, has_prio;
	char msg[512];
	struct jsonw jw;
	json_t *body = NULL;

	rc = req_json_body(r, &body);
	if (rc)
		return rc;
	rc = json_only_keys(body, "", sim_fields, &e);
	if (!rc)
		rc = json_get_string(body, "", "yaml", 1, 1, POLICY_MAX_BYTES, &yaml, &e);
	has_prio = rc ? 0 : json_get_int(body, "", "priority", 0, POLICY_PRIORITY_MIN,
					 POLICY_PRIORITY_MAX, &api_prio, &e);
	if (!rc && has_prio < 0)
		rc = has_prio;
	if (!rc && json_get_int(body, "", "limit", 0, 1, SIM_MAX_LIMIT, &limit, &e) < 0)
		rc = E(VALIDATION);
	if (rc) {
		rc = req_fail_jerr(r, &e);
		goto out;
	}
	rc = sim_time(r, body, "to", r->now + 1, &to);
	if (!rc)
		rc = sim_time(r, body, "from", to - SIM_DEFAULT_WINDOW, &from);
	if (!rc && from >= to)
		rc = req_fail_details(r, E(VALIDATION), json_pack("{ss}", "field", "from"),
				      "from: must be before to");
	if (!rc)
		rc = parse_yaml(r, yaml, &doc);
	if (rc)
		goto out;
	policy_doc_meta(doc, has_prio == 0 ? &api_prio : NULL, NULL, &prio, &enabled);
	meta.priority = prio; /* "as if it were added at" this priority, enabled */
	rc = policy_orgstack_load(st, r->auth.org.org_id, &now, msg, sizeof(msg));
	if (!rc)
		rc = policy_orgstack_load_with(st, r->auth.org.org_id, &meta, doc, &with, msg,
					       sizeof(msg));
	doc = NULL; /* consumed */
	if (rc) {
		rc = req_fail(r, rc, "%s", msg);
		goto out;
	}
	sim = calloc(1, sizeof(*sim));
	if (!sim) {
		rc = req_fail(r, E(INTERNAL), "out of memory");
		goto out;
	}
	{
		struct sim_ctx c = {.now = now, .with = with, .sim = sim};

		rc = st->ops->delegation_scan(st, r->auth.org.org_id, from, to, (int)limit, sim_one,
					      &c);
	}
	if (rc) {
		rc = req_fail(r, rc, "replaying delegations failed: %s", store_last_error());
		goto out;
	}
	jw_init(&jw, &r->out);
	write_sim(&jw, sim, from, to, sim->examined == (size_t)limit);
	rc = jw.rc ? req_fail(r, jw.rc, "response too large") : req_ok_out(r, 200);
out:
	free(sim);
	policy_doc_free(doc);
	policy_stack_free(now);
	policy_stack_free(with);
	json_decref(body);
	return rc;
}
