/*
 * The audit log's endpoints (docs/audit.md): GET /v1/audit/checkpoint,
 * /v1/audit/public-key, /v1/audit/log/{event_id}/proof?tree_size=N,
 * /v1/audit/consistency?from=M&to=N and /v1/audit/log (filters, newest
 * first). The export is in export.c.
 *
 * Everything that names a tree size first brings the org's tree up to
 * date (audit_catch_up), so a checkpoint or proof covers every entry
 * committed before the request.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "audit/api.h"
#include "audit/entry.h"
#include "audit/log.h"
#include "auth/auth.h"
#include "core/err.h"
#include "serve/app.h"
#include "core/banned.h"

#define TREE_SIZE_MAX 1000000000000000L /* what a query may name */

static const char *const decisions[] = {"ALLOW", "BLOCK", NULL};

/* The signing key is there; answers 503 itself otherwise. */
int audit_require_key(struct req *r)
{
	if (r->app->audit_key.ready)
		return 0;
	return req_fail(r, E(UNAVAILABLE), "audit checkpoints cannot be signed: this server's master "
					   "key does not open the shared signing key (see the log)");
}

/* Catch the org's tree up; answers 500 itself on failure. */
static int tree_now(struct req *r, int64_t *size)
{
	int rc = audit_catch_up(r->app->store, r->auth.org.org_id, r->now, size);

	if (rc)
		return req_fail(r, rc, "updating the audit tree failed: %s", store_last_error());
	return 0;
}

static void write_hash(struct jsonw *jw, const merkle_hash h)
{
	char hex[2 * MERKLE_HASH_LEN + 1];

	hex_encode(h, MERKLE_HASH_LEN, hex);
	jw_str(jw, hex);
}

static void write_hashes(struct jsonw *jw, const merkle_hash *p, int n)
{
	jw_raw(jw, "[");
	for (int i = 0; i < n; i++) {
		if (i)
			jw_raw(jw, ",");
		write_hash(jw, p[i]);
	}
	jw_raw(jw, "]");
}

static int answer(struct req *r, struct jsonw *jw)
{
	return jw->rc ? req_fail(r, jw->rc, "response too large") : req_ok_out(r, 200);
}

int api_audit_checkpoint(struct req *r)
{
	struct checkpoint cp;
	struct jsonw jw;
	int64_t size;
	int rc = audit_require_key(r);

	if (!rc)
		rc = tree_now(r, &size);
	if (rc)
		return rc;
	rc = audit_checkpoint(r->app->store, &r->app->audit_key, r->auth.org.org_id,
			      (uint64_t)size, r->now, &cp);
	if (rc)
		return req_fail(r, rc, "signing a checkpoint failed: %s", store_last_error());
	jw_init(&jw, &r->out);
	checkpoint_write(&jw, &cp, r->app->audit_key.pk);
	return answer(r, &jw);
}

int api_audit_public_key(struct req *r)
{
	char b64[CHECKPOINT_PK_B64_MAX], kid[CHECKPOINT_KEY_ID_LEN];
	struct jsonw jw;

	if (audit_require_key(r))
		return r->rc;
	checkpoint_pk_b64(r->app->audit_key.pk, b64);
	checkpoint_key_id(r->app->audit_key.pk, kid);
	jw_init(&jw, &r->out);
	jw_obj_open(&jw);
	jw_kstr(&jw, "algorithm", "Ed25519");
	jw_kstr(&jw, "public_key", b64);
	jw_kstr(&jw, "key_id", kid);
	jw_obj_close(&jw);
	return answer(r, &jw);
}

/* A positive decimal event id from the path; 0 when it is not one. */
static int64_t path_event(const char *s)
{
	char *end;
	long long v;

	if (!s || !*s || *s == '0' || strlen(s) > 18 || !strchr("123456789", *s))
		return 0;
	v = strtoll(s, &end, 10);
	return *end ? 0 : (int64_t)v;
}

static int bad(struct req *r, const char *field, const char *fmt, long long a)
{
	return req_fail_details(r, E(VALIDATION), json_pack("{ss}", "field", field), fmt, a);
}

int api_audit_proof(struct req *r)
{
	merkle_hash proof[MERKLE_MAX_PROOF], leaf, root;
	int64_t event = path_event(r->params[0]), size;
	struct jsonw jw;
	long n;
	int len, rc;

	if (!event)
		return req_fail(r, E(NOT_FOUND), "audit event %s not found", r->params[0]);
	rc = tree_now(r, &size);
	if (!rc)
		rc = req_query_int(r, "tree_size", 1, TREE_SIZE_MAX, (long)size, &n);
	if (rc)
		return rc;
	if (event > size)
		return req_fail(r, E(NOT_FOUND), "audit event %lld not found", (long long)event);
	if (n > size)
		return bad(r, "tree_size", "tree_size: the log has only %lld entries", size);
	if (event > n)
		return bad(r, "tree_size", "tree_size: must be at least the event id (%lld)", event);
	rc = audit_inclusion(r->app->store, r->auth.org.org_id, (uint64_t)event - 1, (uint64_t)n,
			     proof, &len);
	if (!rc)
		rc = audit_leaf(r->app->store, r->auth.org.org_id, (uint64_t)event - 1, leaf);
	if (!rc)
		rc = audit_root(r->app->store, r->auth.org.org_id, (uint64_t)n, root);
	if (rc)
		return req_fail(r, rc, "building the proof failed: %s", store_last_error());
	jw_init(&jw, &r->out);
	jw_obj_open(&jw);
	jw_kint(&jw, "event_id", event);
	jw_kint(&jw, "leaf_index", event - 1);
	jw_kint(&jw, "tree_size", n);
	jw_key(&jw, "leaf_hash");
	write_hash(&jw, leaf);
	jw_key(&jw, "root_hash");
	write_hash(&jw, root);
	jw_key(&jw, "audit_path");
	write_hashes(&jw, proof, len);
	jw_obj_close(&jw);
	return answer(r, &jw);
}

int api_audit_consistency(struct req *r)
{
	merkle_hash proof[MERKLE_MAX_PROOF], r1, r2;
	struct jsonw jw;
	int64_t size;
	long from, to;
	int len, rc = tree_now(r, &size);

	if (!rc && !req_query(r, "from"))
		return req_fail_details(r, E(VALIDATION), json_pack("{ss}", "field", "from"),
					"from: required (a tree size of 1 or more)");
	if (!rc)
		rc = req_query_int(r, "from", 1, TREE_SIZE_MAX, 1, &from);
	if (!rc)
		rc = req_query_int(r, "to", 1, TREE_SIZE_MAX, (long)size, &to);
	if (rc)
		return rc;
	if (to > size)
		return bad(r, "to", "to: the log has only %lld entries", size);
	if (from > to)
		return bad(r, "from", "from: must be at most to (%lld)", to);
	rc = audit_consistency(r->app->store, r->auth.org.org_id, (uint64_t)from, (uint64_t)to,
			       proof, &len);
	if (!rc)
		rc = audit_root(r->app->store, r->auth.org.org_id, (uint64_t)from, r1);
	if (!rc)
		rc = audit_root(r->app->store, r->auth.org.org_id, (uint64_t)to, r2);
	if (rc)
		return req_fail(r, rc, "building the proof failed: %s", store_last_error());
	jw_init(&jw, &r->out);
	jw_obj_open(&jw);
	jw_kint(&jw, "from", from);
	jw_kint(&jw, "to", to);
	jw_key(&jw, "from_root");
	write_hash(&jw, r1);
	jw_key(&jw, "to_root");
	write_hash(&jw, r2);
	jw_key(&jw, "proof");
	write_hashes(&jw, proof, len);
	jw_obj_close(&jw);
	return answer(r, &jw);
}

static int list_one(void *ctx, const struct audit_entry *e)
{
	struct req_list *l = ctx;

	if (req_list_item(l))
		audit_entry_write(&l->jw, e);
	return l->jw.rc;
}

int api_audit_list(struct req *r)
{
	struct store *st = r->app->store;
	struct audit_filter f = {.org_id = r->auth.org.org_id, .from = 0, .to = INT64_MAX};
	struct req_list l;
	int rc = req_query_enum(r, "decision", decisions, &f.decision);

	f.agent_id = req_query(r, "agent_id");
	f.delegation_id = req_query(r, "delegation_id");
	if (!rc && f.agent_id && !agent_id_valid(f.agent_id))
		rc = req_fail_details(r, E(VALIDATION), json_pack("{ss}", "field", "agent_id"),
				      "agent_id: not a valid agent id");
	if (!rc && f.delegation_id && strlen(f.delegation_id) >= ID_MAX)
		rc = req_fail_details(r, E(VALIDATION), json_pack("{ss}", "field", "delegation_id"),
				      "delegation_id: not a delegation id");
	if (!rc)
		rc = req_query_window(r, &f.from, &f.to);
	if (!rc)
		rc = req_list_begin(r, &l);
	if (rc)
		return rc;
	rc = st->ops->audit_list(st, &f, l.limit + 1, l.offset, list_one, &l);
	return req_list_end(r, &l, rc, "listing the audit log");
}
