/*
 * Service endpoints outside /v1: GET /healthz (answers once the store is
 * open and migrated, which is before the server starts listening; 503 while
 * shutting down) and GET /metrics (Prometheus text).
 */
#include "http/service.h"
#include "approvals/notifier.h"
#include "billing/dispatcher.h"
#include "delegation/delegator.h"

#include "core/err.h"
#include "core/jsonw.h"
#include "http/metrics.h"
#include "serve/app.h"
#include "core/banned.h"

int api_healthz(struct req *r)
{
	struct jsonw jw;

	if (atomic_load(&r->app->shutting_down))
		return req_fail(r, E(UNAVAILABLE), "shutting down");
	jw_init(&jw, &r->out);
	jw_obj_open(&jw);
	jw_kstr(&jw, "status", "ok");
	jw_kstr(&jw, "db", r->app->store->ops->name);
	jw_obj_close(&jw);
	return jw.rc ? jw.rc : req_ok_out(r, 200);
}

int api_metrics(struct req *r)
{
	int rc = metrics_render(r->app->metrics, &r->out, atomic_load(&r->app->in_flight),
				r->app->store->ops->name);

	if (!rc && r->app->delegator)
		rc = delegator_metrics(r->app->delegator, &r->out);
	if (!rc && r->app->notifier)
		rc = notifier_metrics(r->app->notifier, &r->out);
	if (!rc && r->app->billing)
		rc = billing_metrics(r->app->billing, &r->out);
	if (rc)
		return req_fail(r, rc, "rendering metrics failed");
	r->raw_type = "text/plain; version=0.0.4; charset=utf-8";
	return req_ok_out(r, 200);
}
