/* Backend dispatch by URI and the shared bits of the storage layer. */
#include "store/store.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/jsonw.h"
#include "core/banned.h"

static _Thread_local char last_error[512];

const char *store_last_error(void)
{
	return last_error;
}

void store_set_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(last_error, sizeof(last_error), fmt, ap);
	va_end(ap);
}

int store_search_text(const struct agent_search *q, const char *quote, const char *sep,
		      char *out, size_t outsz)
{
	size_t n = 0;

	out[0] = '\0';
	for (int i = 0; i < q->nterms; i++) {
		int w = snprintf(out + n, outsz - n, "%s%s%s%s", i ? sep : "", quote, q->terms[i],
				 quote);

		if (w < 0 || (size_t)w >= outsz - n)
			return E(INTERNAL);
		n += (size_t)w;
	}
	return 0;
}

void agent_release(struct agent *a)
{
	free(a->name);
	free(a->description);
	free(a->webhook_url);
	free(a->secret_sealed);
	free(a->input_schema);
	free(a->output_schema);
	free(a->embedding_id);
	a->name = a->description = a->webhook_url = NULL;
	a->input_schema = a->output_schema = a->embedding_id = NULL;
	a->secret_sealed = NULL;
	a->secret_sealed_len = 0;
}

void policy_release(struct policy *p)
{
	free(p->yaml);
	p->yaml = NULL;
}

void billing_settings_release(struct billing_settings *b)
{
	free(b->secret_sealed);
	b->secret_sealed = NULL;
	b->secret_sealed_len = 0;
}

void delegation_release(struct delegation *d)
{
	free(d->task_input);
	free(d->context_scope);
	free(d->policy_result);
	free(d->callback_url);
	free(d->result);
	free(d->error_message);
	free(d->decision_reason);
	d->task_input = d->context_scope = d->policy_result = NULL;
	d->callback_url = d->result = d->error_message = d->decision_reason = NULL;
}

char *delegation_approval_json(const struct delegation *d, int *oom)
{
	struct buf b;
	struct jsonw jw;
	size_t len;

	*oom = 0;
	if (!d->decided[0])
		return NULL;
	buf_init(&b, 64 * 1024);
	jw_init(&jw, &b);
	/* members sorted by name: the audit entry embeds these bytes in its
	 * canonical form (docs/audit.md) */
	jw_obj_open(&jw);
	jw_kstr(&jw, "approver", d->approver[0] ? d->approver : NULL);
	jw_ktime(&jw, "decided_at", d->decided_at);
	jw_key(&jw, "decided_by");
	jw_obj_open(&jw);
	jw_kstr(&jw, "key_id", d->decided_by_key_id);
	jw_kstr(&jw, "key_name", d->decided_by_key_name);
	jw_obj_close(&jw);
	jw_kstr(&jw, "decision", d->decided);
	jw_kstr(&jw, "reason", d->decision_reason);
	jw_obj_close(&jw);
	if (jw.rc) {
		buf_release(&b);
		*oom = 1;
		return NULL;
	}
	return buf_detach(&b, &len);
}

int store_open(const char *uri, int pool, struct store **out, char *msg, size_t msgsz)
{
	*out = NULL;
	if (!strncmp(uri, "sqlite:", 7))
		return store_sqlite_open(uri + 7, pool, out, msg, msgsz);
	if (!strncmp(uri, "postgres://", 11) || !strncmp(uri, "postgresql://", 13))
		return store_pg_open(uri, pool, out, msg, msgsz);
	snprintf(msg, msgsz, "unsupported --db %s: use sqlite:PATH or postgres://...", uri);
	return E(VALIDATION);
}
