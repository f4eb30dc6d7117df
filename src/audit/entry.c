/* Canonical audit entry bytes; see entry.h and docs/audit.md. */
#include "audit/entry.h"

#include <math.h>

#include "core/err.h"
#include "core/banned.h"

static void opt_str(struct jsonw *jw, const char *key, const char *s)
{
	jw_kstr(jw, key, s[0] ? s : NULL);
}

void audit_entry_write(struct jsonw *jw, const struct audit_entry *e)
{
	jw_obj_open(jw);
	/* already canonical (store.h delegation_approval_json) */
	jw_kraw(jw, "approval", e->approval ? e->approval : "null");
	jw_key(jw, "budget_remaining");
	if (e->budget_remaining_micros < 0)
		jw_raw(jw, "null");
	else
		jw_money(jw, e->budget_remaining_micros);
	opt_str(jw, "callee_id", e->callee_id);
	jw_kstr(jw, "caller_id", e->caller_id);
	jw_key(jw, "cost_usd");
	jw_money(jw, e->cost_micros);
	jw_kstr(jw, "decision", e->decision);
	jw_kstr(jw, "delegation_id", e->delegation_id);
	jw_kint(jw, "event_id", e->event_id);
	jw_kstr(jw, "org_id", e->org_id);
	opt_str(jw, "policy_ref", e->policy_ref);
	jw_kstr(jw, "status", e->status);
	jw_ktime(jw, "timestamp", e->ts);
	jw_key(jw, "trust_delta");
	if (isnan(e->trust_before) && isnan(e->trust_after)) {
		jw_raw(jw, "null");
	} else {
		jw_obj_open(jw);
		jw_key(jw, "after");
		jw_num(jw, e->trust_after);
		jw_key(jw, "before");
		jw_num(jw, e->trust_before);
		jw_obj_close(jw);
	}
	jw_obj_close(jw);
}

int audit_entry_bytes(const struct audit_entry *e, struct buf *b)
{
	struct jsonw jw;

	buf_reset(b);
	jw_init(&jw, b);
	audit_entry_write(&jw, e);
	return jw.rc;
}

int audit_entry_leaf(const struct audit_entry *e, merkle_hash out)
{
	struct buf b;
	int rc;

	buf_init(&b, AUDIT_ENTRY_MAX);
	rc = audit_entry_bytes(e, &b);
	if (!rc)
		merkle_leaf(b.data, b.len, out);
	buf_release(&b);
	return rc;
}
