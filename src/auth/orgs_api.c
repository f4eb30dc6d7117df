/*
 * Org endpoints: POST /v1/orgs/register (sign-up, gated by --signup) and
 * GET /v1/orgs/me. Sign-up creates the org and its first live and test
 * keys in one store operation, and is the only time those keys are shown.
 */
#include <stdio.h>
#include <string.h>

#include "auth/api.h"
#include "auth/apikey.h"
#include "auth/auth.h"
#include "core/err.h"
#include "core/json.h"
#include "core/jsonw.h"
#include "serve/app.h"
#include "core/banned.h"

static const char *const plans[] = {"starter", "growth", NULL};
static const char *const register_fields[] = {"name", "plan", NULL};

static int signup_allowed(struct req *r)
{
	const struct config *cfg = r->app->cfg;
	const char *tok;
	size_t len = 0;

	if (cfg->signup == SIGNUP_OPEN)
		return 0;
	if (cfg->signup == SIGNUP_CLOSED)
		return req_fail(r, E(FORBIDDEN), "sign-up is closed on this server");
	tok = auth_bearer(req_header(r, "Authorization"), &len);
	if (!cfg->admin_token[0])
		return req_fail(r, E(FORBIDDEN),
				"sign-up needs the admin token, and none is configured (NEXRA_ADMIN_TOKEN)");
	if (!tok || len != strlen(cfg->admin_token) ||
	    !apikey_secret_equal(tok, cfg->admin_token, len))
		return req_fail(r, E(FORBIDDEN),
				"sign-up needs Authorization: Bearer <admin token>");
	return 0;
}

int api_org_register(struct req *r)
{
	struct store *st = r->app->store;
	struct jerr e = {{0}, {0}};
	json_t *body = NULL;
	const char *name = NULL, *plan = NULL;
	char live[APIKEY_LEN + 1], test[APIKEY_LEN + 1];
	struct api_key lk, tk;
	struct org o;
	struct jsonw jw;
	int rc, tries;

	rc = signup_allowed(r);
	if (rc)
		return rc;
	rc = req_json_body(r, &body);
	if (rc)
		return rc;
	rc = json_only_keys(body, "", register_fields, &e);
	if (!rc)
		rc = json_get_string(body, "", "name", 1, 1, ORG_NAME_MAX, &name, &e);
	if (!rc)
		rc = json_get_enum(body, "", "plan", 1, plans, &plan, &e);
	if (rc) {
		json_decref(body);
		return req_fail_jerr(r, &e);
	}
	memset(&o, 0, sizeof(o));
	snprintf(o.name, sizeof(o.name), "%s", name);
	snprintf(o.plan, sizeof(o.plan), "%s", plan);
	json_decref(body);
	o.created_at = r->now;
	for (tries = 0; tries < 3; tries++) { /* a random id collision is retried */
		rc = rand_id(o.org_id, "org_", 8);
		if (!rc)
			rc = apikey_new_row(o.org_id, KEY_LIVE, "default", o.created_at, &lk, live);
		if (!rc)
			rc = apikey_new_row(o.org_id, KEY_TEST, "default test", o.created_at, &tk,
					    test);
		if (!rc)
			rc = st->ops->org_create(st, &o, &lk, &tk);
		if (rc != E(CONFLICT))
			break;
	}
	if (rc)
		return req_fail(r, E(INTERNAL), "could not create the organization: %s",
				store_last_error());
	jw_init(&jw, &r->out);
	jw_obj_open(&jw);
	jw_kstr(&jw, "org_id", o.org_id);
	jw_kstr(&jw, "name", o.name);
	jw_kstr(&jw, "plan", o.plan);
	jw_kstr(&jw, "api_key", live);
	jw_kstr(&jw, "test_api_key", test);
	jw_kstr(&jw, "live_key_id", lk.key_id);
	jw_kstr(&jw, "test_key_id", tk.key_id);
	jw_ktime(&jw, "created_at", o.created_at);
	jw_obj_close(&jw);
	return jw.rc ? jw.rc : req_ok_out(r, 201);
}

int api_org_me(struct req *r)
{
	const struct org *o = &r->auth.org;
	const struct api_key *k = &r->auth.key;
	struct jsonw jw;

	jw_init(&jw, &r->out);
	jw_obj_open(&jw);
	jw_kstr(&jw, "org_id", o->org_id);
	jw_kstr(&jw, "name", o->name);
	jw_kstr(&jw, "plan", o->plan);
	jw_ktime(&jw, "created_at", o->created_at);
	jw_key(&jw, "rate_limit");
	jw_obj_open(&jw);
	jw_kint(&jw, "limit", config_plan_limit(r->app->cfg, o->plan));
	jw_kint(&jw, "window_seconds", 60);
	jw_obj_close(&jw);
	jw_key(&jw, "key");
	jw_obj_open(&jw);
	jw_kstr(&jw, "key_id", k->key_id);
	jw_kstr(&jw, "kind", k->kind == KEY_LIVE ? "live" : "test");
	jw_kstr(&jw, "name", k->name);
	jw_obj_close(&jw);
	jw_obj_close(&jw);
	return jw.rc ? jw.rc : req_ok_out(r, 200);
}
