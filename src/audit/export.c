/*
 * GET /v1/audit/log/export?format=jsonl|csv&from=&to= (docs/audit.md,
 * "Export format"): the org's entries of a time range, streamed.
 *
 * The range exported is contiguous in event ids, from the first entry with
 * timestamp >= from to the last with timestamp < to, so that it can be
 * verified: it opens with the frontier of the tree before its first entry
 * (the prefix) and ends with a checkpoint, signed now, of the tree at its
 * last entry. Both are computed before the first byte goes out, so entries
 * committed meanwhile change nothing.
 *
 * Memory stays flat whatever the range: the body is produced as
 * libmicrohttpd asks for it, one page of EXPORT_PAGE entries (keyset
 * pagination on event_id) at a time into a buffer that is reused.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/api.h"
#include "audit/entry.h"
#include "audit/log.h"
#include "core/err.h"
#include "core/timefmt.h"
#include "serve/app.h"
#include "core/banned.h"

#define EXPORT_PAGE 1000
#define EXPORT_BUF_MAX ((size_t)16 * 1024 * 1024) /* a page of the largest entries */

static const char *const formats[] = {"jsonl", "csv", NULL};

enum stage { ST_HEAD, ST_ENTRIES, ST_TAIL, ST_DONE };

struct export {
	struct store *store;
	char org_id[ID_MAX];
	int csv;
	int64_t first, last, after; /* range [first, last]; entries up to after sent */
	merkle_hash prefix[MERKLE_MAX_LEVELS];
	int nprefix;
	struct checkpoint cp;
	unsigned char pk[CHECKPOINT_PK_LEN];
	enum stage stage;
	struct buf out, cell;
	size_t off;
	int rows;
};

static void export_free(void *ctx)
{
	struct export *x = ctx;

	if (!x)
		return;
	buf_release(&x->out);
	buf_release(&x->cell);
	free(x);
}

/* A CSV cell: verbatim, or quoted with "" when it holds , " CR or LF. */
static int csv_cell(struct buf *b, const char *s, size_t n, int last)
{
	int rc = 0;

	if (strcspn(s, ",\"\r\n") >= n) {
		rc = buf_add(b, s, n);
	} else {
		rc = buf_add(b, "\"", 1);
		for (size_t i = 0; !rc && i < n; i++)
			rc = s[i] == '"' ? buf_add(b, "\"\"", 2) : buf_add(b, s + i, 1);
		if (!rc)
			rc = buf_add(b, "\"", 1);
	}
	return rc ? rc : buf_add(b, last ? "\r\n" : ",", last ? 2 : 1);
}

static int csv_str(struct buf *b, const char *s, int last)
{
	return csv_cell(b, s, strlen(s), last);
}

/* A number as the canonical entry writes it, or "" for none. */
static int csv_num(struct export *x, int is_money, int64_t micros, double v, int none, int last)
{
	struct jsonw jw;

	buf_reset(&x->cell);
	jw_init(&jw, &x->cell);
	if (!none) {
		if (is_money)
			jw_money(&jw, micros);
		else
			jw_num(&jw, v);
	}
	if (jw.rc)
		return jw.rc;
	return csv_cell(&x->out, x->cell.data ? x->cell.data : "", x->cell.len, last);
}

static void hex_of(const merkle_hash h, char out[2 * MERKLE_HASH_LEN + 1])
{
	hex_encode(h, MERKLE_HASH_LEN, out);
}

/* The meta object of the first line: range and prefix frontier. */
static void write_meta(struct export *x, struct jsonw *jw)
{
	char hex[2 * MERKLE_HASH_LEN + 1];

	jw_obj_open(jw);
	jw_kint(jw, "version", 1);
	jw_kstr(jw, "org_id", x->org_id);
	jw_kstr(jw, "format", x->csv ? "csv" : "jsonl");
	jw_kint(jw, "first_event_id", x->first);
	jw_kint(jw, "last_event_id", x->last);
	jw_kint(jw, "prefix_size", x->first - 1);
	jw_key(jw, "prefix");
	jw_raw(jw, "[");
	for (int i = 0; i < x->nprefix; i++) {
		if (i)
			jw_raw(jw, ",");
		hex_of(x->prefix[i], hex);
		jw_str(jw, hex);
	}
	jw_raw(jw, "]");
	jw_obj_close(jw);
}

static int head(struct export *x)
{
	static const char cols[] = "event_id,timestamp,org_id,delegation_id,caller_id,callee_id,"
				   "policy_ref,decision,status,cost_usd,budget_remaining,"
				   "trust_before,trust_after,approval,leaf_hash\r\n";
	struct jsonw jw;

	jw_init(&jw, x->csv ? &x->cell : &x->out);
	if (!x->csv) {
		jw_raw(&jw, "{\"export\":");
		write_meta(x, &jw);
		jw_raw(&jw, "}\n");
		return jw.rc;
	}
	buf_reset(&x->cell);
	write_meta(x, &jw);
	if (jw.rc || csv_str(&x->out, "export", 0) ||
	    csv_cell(&x->out, x->cell.data, x->cell.len, 1))
		return E(INTERNAL);
	return buf_adds(&x->out, cols);
}

static int csv_entry(struct export *x, const struct audit_entry *e)
{
	char n[24], hex[2 * MERKLE_HASH_LEN + 1], ts[RFC3339_LEN];
	int no_trust = isnan(e->trust_before) && isnan(e->trust_after);
	int rc;

	snprintf(n, sizeof(n), "%lld", (long long)e->event_id);
	time_rfc3339(e->ts, ts);
	rc = csv_str(&x->out, n, 0) || csv_str(&x->out, ts, 0) || csv_str(&x->out, e->org_id, 0) ||
	     csv_str(&x->out, e->delegation_id, 0) || csv_str(&x->out, e->caller_id, 0) ||
	     csv_str(&x->out, e->callee_id, 0) || csv_str(&x->out, e->policy_ref, 0) ||
	     csv_str(&x->out, e->decision, 0) || csv_str(&x->out, e->status, 0);
	if (!rc)
		rc = csv_num(x, 1, e->cost_micros, 0, 0, 0) ||
		     csv_num(x, 1, e->budget_remaining_micros, 0, e->budget_remaining_micros < 0, 0) ||
		     csv_num(x, 0, 0, e->trust_before, no_trust, 0) ||
		     csv_num(x, 0, 0, e->trust_after, no_trust, 0) ||
		     csv_str(&x->out, e->approval ? e->approval : "", 0);
	if (e->has_leaf)
		hex_of(e->leaf, hex);
	else
		hex[0] = '\0';
	return rc || csv_str(&x->out, hex, 1) ? E(INTERNAL) : 0;
}

static int one_entry(void *ctx, const struct audit_entry *e)
{
	struct export *x = ctx;
	char hex[2 * MERKLE_HASH_LEN + 1];
	struct jsonw jw;

	x->after = e->event_id;
	x->rows++;
	if (x->csv)
		return csv_entry(x, e);
	jw_init(&jw, &x->out);
	jw_raw(&jw, "{\"entry\":");
	audit_entry_write(&jw, e);
	jw_raw(&jw, ",\"leaf_hash\":");
	if (e->has_leaf) {
		hex_of(e->leaf, hex);
		jw_str(&jw, hex);
	} else {
		jw_raw(&jw, "null");
	}
	jw_raw(&jw, "}\n");
	return jw.rc;
}

static int tail(struct export *x)
{
	struct jsonw jw;

	if (!x->csv) {
		jw_init(&jw, &x->out);
		jw_raw(&jw, "{\"checkpoint\":");
		checkpoint_write(&jw, &x->cp, x->pk);
		jw_raw(&jw, "}\n");
		return jw.rc;
	}
	buf_reset(&x->cell);
	jw_init(&jw, &x->cell);
	checkpoint_write(&jw, &x->cp, x->pk);
	if (jw.rc || csv_str(&x->out, "checkpoint", 0) ||
	    csv_cell(&x->out, x->cell.data, x->cell.len, 1))
		return E(INTERNAL);
	return 0;
}

/* Refill x->out with the next part of the body. */
static int produce(struct export *x)
{
	int rc = 0;

	buf_reset(&x->out);
	x->off = 0;
	switch (x->stage) {
	case ST_HEAD:
		rc = head(x);
		x->stage = x->first <= x->last ? ST_ENTRIES : ST_TAIL;
		break;
	case ST_ENTRIES:
		x->rows = 0;
		rc = x->store->ops->audit_scan(x->store, x->org_id, x->after, x->last, EXPORT_PAGE,
					       one_entry, x);
		if (x->rows < EXPORT_PAGE || x->after >= x->last)
			x->stage = ST_TAIL;
		break;
	case ST_TAIL:
		rc = tail(x);
		x->stage = ST_DONE;
		break;
	case ST_DONE:
		break;
	}
	return rc;
}

static ssize_t export_read(void *ctx, uint64_t pos, char *out, size_t max)
{
	struct export *x = ctx;
	size_t n;

	(void)pos;
	while (x->off >= x->out.len) {
		if (x->stage == ST_DONE)
			return REQ_STREAM_END;
		if (produce(x))
			return REQ_STREAM_ERROR; /* the client sees a cut body, no checkpoint */
	}
	n = x->out.len - x->off;
	if (n > max)
		n = max;
	memcpy(out, x->out.data + x->off, n);
	x->off += n;
	return (ssize_t)n;
}

/* The range to export: [first, last] (first = last + 1 when empty). */
static int export_range(struct req *r, int64_t size, int64_t from, int64_t to, int timed,
			struct export *x)
{
	int rc;

	x->first = 1;
	x->last = size;
	if (!timed)
		return 0;
	rc = r->app->store->ops->audit_range(r->app->store, r->auth.org.org_id, from, to, &x->first,
					     &x->last);
	if (rc)
		return rc;
	if (x->last > size)
		x->last = size;
	if (!x->first || x->first > x->last) {
		x->first = size + 1; /* nothing: an empty export of the whole tree */
		x->last = size;
	}
	return 0;
}

int api_audit_export(struct req *r)
{
	struct store *st = r->app->store;
	const char *format = NULL;
	int64_t from = 0, to = INT64_MAX, size;
	struct export *x;
	int rc = audit_require_key(r);

	if (!rc)
		rc = req_query_enum(r, "format", formats, &format);
	if (!rc)
		rc = req_query_window(r, &from, &to);
	if (rc)
		return rc;
	rc = audit_catch_up(st, r->auth.org.org_id, r->now, &size);
	if (rc)
		return req_fail(r, rc, "updating the audit tree failed: %s", store_last_error());
	x = calloc(1, sizeof(*x));
	if (!x)
		return req_fail(r, E(INTERNAL), "out of memory");
	x->store = st;
	snprintf(x->org_id, sizeof(x->org_id), "%s", r->auth.org.org_id);
	x->csv = format && !strcmp(format, "csv");
	buf_init(&x->out, EXPORT_BUF_MAX);
	buf_init(&x->cell, AUDIT_ENTRY_MAX);
	memcpy(x->pk, r->app->audit_key.pk, sizeof(x->pk));
	rc = export_range(r, size, from, to, req_query(r, "from") || req_query(r, "to"), x);
	if (!rc)
		rc = audit_frontier(st, x->org_id, (uint64_t)(x->first - 1), x->prefix, &x->nprefix);
	if (!rc)
		rc = audit_checkpoint(st, &r->app->audit_key, x->org_id, (uint64_t)x->last, r->now,
				      &x->cp);
	x->after = x->first - 1;
	if (rc) {
		export_free(x);
		return req_fail(r, rc, "preparing the export failed: %s", store_last_error());
	}
	return req_ok_stream(r, x->csv ? "text/csv; charset=utf-8" : "application/x-ndjson", export_read,
			     x, export_free);
}
