/* Response setters and request helpers; see req.h. */
#include "http/req.h"

#include <microhttpd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/timefmt.h"
#include "core/json.h"
#include "core/banned.h"

int req_ok(struct req *r, int status, json_t *data)
{
	char *s = json_dumps(data, JSON_DUMP_FLAGS | JSON_ENCODE_ANY);
	int rc;

	json_decref(data);
	if (!s)
		return req_fail(r, E(INTERNAL), "out of memory rendering response");
	buf_reset(&r->out);
	rc = buf_adds(&r->out, s);
	free(s);
	if (rc)
		return req_fail(r, E(INTERNAL), "response too large");
	return req_ok_out(r, status);
}

int req_ok_out(struct req *r, int status)
{
	r->status = status;
	r->rc = 0;
	return 0;
}

int req_ok_stream(struct req *r, const char *content_type, req_stream_fn read, void *ctx,
		  void (*free_ctx)(void *ctx))
{
	r->status = 200;
	r->rc = 0;
	r->raw_type = content_type;
	r->stream = read;
	r->stream_ctx = ctx;
	r->stream_free = free_ctx;
	return 0;
}

int req_ok_list(struct req *r, int has_more, int limit, int offset)
{
	r->is_list = 1;
	r->has_more = has_more;
	r->list_limit = limit;
	r->list_offset = offset;
	return req_ok_out(r, 200);
}

static int fail(struct req *r, int rc, json_t *details, const char *fmt, va_list ap)
{
	if (rc >= 0)
		rc = E(INTERNAL);
	r->rc = rc;
	r->status = err_status(rc);
	if (fmt)
		vsnprintf(r->err_message, sizeof(r->err_message), fmt, ap);
	else
		snprintf(r->err_message, sizeof(r->err_message), "%s", err_message(rc));
	json_decref(r->err_details);
	r->err_details = details;
	free(r->err_details_raw);
	r->err_details_raw = NULL;
	return rc;
}

int req_fail(struct req *r, int rc, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	rc = fail(r, rc, NULL, fmt, ap);
	va_end(ap);
	return rc;
}

int req_fail_details(struct req *r, int rc, json_t *details, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	rc = fail(r, rc, details, fmt, ap);
	va_end(ap);
	return rc;
}

int req_fail_raw(struct req *r, int rc, char *details, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	rc = fail(r, rc, NULL, fmt, ap);
	va_end(ap);
	r->err_details_raw = details;
	return rc;
}

const char *req_header(struct req *r, const char *name)
{
	return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

const char *req_query(struct req *r, const char *name)
{
	return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
}

int req_fail_jerr(struct req *r, const struct jerr *e)
{
	return req_fail_details(r, E(VALIDATION), json_pack("{ss}", "field", e->field), "%s",
				e->message);
}

int req_json_body(struct req *r, json_t **out)
{
	struct jerr e = {{0}, {0}};
	int rc = json_parse_object(r->body.data ? r->body.data : "", r->body.len, out, &e);

	return rc ? req_fail_jerr(r, &e) : 0;
}

int req_query_int(struct req *r, const char *name, long min, long max, long dflt, long *out)
{
	const char *v = req_query(r, name);
	char *end;
	long n;

	*out = dflt;
	if (!v)
		return 0;
	n = strtol(v, &end, 10);
	if (!*v || *end || n < min || n > max || !strchr("0123456789", v[0]) ||
	    (v[0] == '0' && v[1]))
		return req_fail_details(r, E(VALIDATION), json_pack("{ss}", "field", name),
					"%s: must be an integer between %ld and %ld", name, min,
					max);
	*out = n;
	return 0;
}

int req_list_begin(struct req *r, struct req_list *l)
{
	int rc = req_page(r, &l->limit, &l->offset);

	if (rc)
		return rc;
	l->n = 0;
	jw_init(&l->jw, &r->out);
	jw_raw(&l->jw, "[");
	return 0;
}

int req_list_item(struct req_list *l)
{
	if (++l->n > l->limit)
		return 0;
	if (l->n > 1)
		jw_raw(&l->jw, ",");
	return 1;
}

int req_list_end(struct req *r, struct req_list *l, int rc, const char *what)
{
	jw_raw(&l->jw, "]");
	if (rc || l->jw.rc)
		return req_fail(r, rc ? rc : l->jw.rc, "%s failed: %s", what, store_last_error());
	return req_ok_list(r, l->n > l->limit, l->limit, l->offset);
}

int req_page(struct req *r, int *limit, int *offset)
{
	long l, o;
	int rc = req_query_int(r, "limit", 1, 200, 50, &l);

	if (!rc)
		rc = req_query_int(r, "offset", 0, 1000000000L, 0, &o);
	if (rc)
		return rc;
	*limit = (int)l;
	*offset = (int)o;
	return 0;
}

int req_query_enum(struct req *r, const char *name, const char *const *allowed,
		   const char **out)
{
	const char *v = req_query(r, name);

	*out = NULL;
	if (!v)
		return 0;
	for (const char *const *a = allowed; *a; a++)
		if (!strcmp(*a, v)) {
			*out = *a;
			return 0;
		}
	return req_fail_details(r, E(VALIDATION), json_pack("{ss}", "field", name),
				"%s: unknown value '%s'", name, v);
}

int req_query_time(struct req *r, const char *name, int64_t *out)
{
	const char *v = req_query(r, name);

	if (!v)
		return 0;
	if (time_parse_rfc3339(v, out))
		return req_fail_details(r, E(VALIDATION), json_pack("{ss}", "field", name),
					"%s: expected an RFC 3339 time like 2026-03-16T14:22:38Z",
					name);
	return 0;
}

int req_query_window(struct req *r, int64_t *from, int64_t *to)
{
	int rc = req_query_time(r, "from", from);

	if (!rc)
		rc = req_query_time(r, "to", to);
	if (!rc && *from >= *to)
		rc = req_fail_details(r, E(VALIDATION), json_pack("{ss}", "field", "from"),
				      "from: must be before to");
	return rc;
}
