/* Backend dispatch by URI and the shared bits of the storage layer. */
#include "store/store.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
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
	d->task_input = d->context_scope = d->policy_result = NULL;
	d->callback_url = d->result = d->error_message = NULL;
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
