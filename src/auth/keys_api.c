/*
 * Key endpoints: POST /v1/keys, GET /v1/keys, DELETE /v1/keys/{key_id}.
 * Creating and revoking keys needs a live key: a test key is meant for
 * trying policies, and must not be able to mint or destroy live access.
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

static const char *const kinds[] = {"live", "test", NULL};
static const char *const create_fields[] = {"kind", "name", NULL};

static void write_key(struct jsonw *jw, const struct api_key *k, const char *secret)
{
	jw_obj_open(jw);
	jw_kstr(jw, "key_id", k->key_id);
	jw_kstr(jw, "kind", k->kind == KEY_LIVE ? "live" : "test");
	jw_kstr(jw, "name", k->name);
	if (secret)
		jw_kstr(jw, "api_key", secret);
	jw_kstr(jw, "prefix", k->prefix);
	jw_ktime(jw, "created_at", k->created_at);
	jw_ktime(jw, "revoked_at", k->revoked_at);
	jw_obj_close(jw);
}

int api_key_create(struct req *r)
{
	struct store *st = r->app->store;
	struct jerr e = {{0}, {0}};
	const char *kind = "live", *name = "";
	char secret[APIKEY_LEN + 1];
	json_t *body = NULL;
	struct api_key k;
	struct jsonw jw;
	int rc = auth_require_live(r, "managing keys"), tries;

	if (rc)
		return rc;
	if (r->body.len) {
		rc = req_json_body(r, &body);
		if (rc)
			return rc;
		rc = json_only_keys(body, "", create_fields, &e);
		if (!rc && json_get_enum(body, "", "kind", 0, kinds, &kind, &e) < 0)
			rc = E(VALIDATION);
		if (!rc && json_get_string(body, "", "name", 0, 0, KEY_NAME_MAX, &name, &e) < 0)
			rc = E(VALIDATION);
		if (rc) {
			json_decref(body);
			return req_fail_jerr(r, &e);
		}
	}
	for (tries = 0; tries < 3; tries++) {
		rc = apikey_new_row(r->auth.org.org_id, strcmp(kind, "live") ? KEY_TEST : KEY_LIVE,
				    name, r->now, &k, secret);
		if (!rc)
			rc = st->ops->key_create(st, &k);
		if (rc != E(CONFLICT))
			break;
	}
	json_decref(body); /* name pointed into it */
	if (rc)
		return req_fail(r, E(INTERNAL), "could not create the key: %s", store_last_error());
	jw_init(&jw, &r->out);
	write_key(&jw, &k, secret);
	return jw.rc ? jw.rc : req_ok_out(r, 201);
}

static int list_one(void *ctx, const struct api_key *k)
{
	struct req_list *l = ctx;

	if (req_list_item(l))
		write_key(&l->jw, k, NULL);
	return l->jw.rc;
}

int api_key_list(struct req *r)
{
	struct store *st = r->app->store;
	struct req_list l;
	int rc = req_list_begin(r, &l);

	if (rc)
		return rc;
	rc = st->ops->key_list(st, r->auth.org.org_id, l.limit + 1, l.offset, list_one, &l);
	return req_list_end(r, &l, rc, "listing keys");
}

int api_key_revoke(struct req *r)
{
	struct store *st = r->app->store;
	const char *key_id = r->params[0];
	int64_t revoked_at = 0;
	struct jsonw jw;
	int rc = auth_require_live(r, "managing keys");

	if (rc)
		return rc;
	if (!rand_id_valid(key_id, "key_", 8))
		return req_fail(r, E(NOT_FOUND), "key not found");
	rc = st->ops->key_revoke(st, r->auth.org.org_id, key_id, r->now, &revoked_at);
	if (rc == E(NOT_FOUND))
		return req_fail(r, rc, "key not found"); /* same body for other orgs' keys */
	if (rc == E(CONFLICT))
		return req_fail(r, rc,
				"key %s is the organization's last live key; create another first",
				key_id);
	if (rc)
		return req_fail(r, rc, "revoking failed: %s", store_last_error());
	jw_init(&jw, &r->out);
	jw_obj_open(&jw);
	jw_kstr(&jw, "key_id", key_id);
	jw_ktime(&jw, "revoked_at", revoked_at);
	jw_obj_close(&jw);
	return jw.rc ? jw.rc : req_ok_out(r, 200);
}
