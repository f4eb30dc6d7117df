/*
 * `nexra serve`: the composition root. Order of start: configuration,
 * master key, store (open + migrate), rate limiter and metrics, then the
 * HTTP server; only then is "listening on ..." printed, so /healthz answers
 * as soon as the address is known. Signals are blocked in every thread and
 * taken synchronously here with sigwait, so shutdown runs as ordinary code:
 * stop accepting, let in-flight requests finish, stop the threads, close
 * the database.
 */
#include "serve/serve.h"

#include <curl/curl.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "approvals/notifier.h"
#include "core/err.h"
#include "audit/appender.h"
#include "audit/log.h"
#include "core/log.h"
#include "core/timefmt.h"
#include "billing/dispatcher.h"
#include "crypto/seal.h"
#include "delegation/delegator.h"
#include "discovery/discovery.h"
#include "http/metrics.h"
#include "http/server.h"
#include "serve/app.h"
#include "core/banned.h"

#define POOL_EXTRA 5 /* sweeper, ledger writer, billing dispatcher, notifier, audit appender */

/* mkdir -p of the parent directory of path (one level is enough for
 * ./var/nexra.db, and deeper trees are the operator's to create). */
static void ensure_parent(const char *path)
{
	char dir[1024];
	char *slash;

	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (!slash || slash == dir)
		return;
	*slash = '\0';
	if (mkdir(dir, 0700) && errno != EEXIST)
		log_msg("warn", "startup", "cannot create directory %s: %s", dir, strerror(errno));
}

static int start(struct app *app, struct config *cfg, char *msg, size_t msgsz)
{
	int created = 0, rc;

	if (seal_global_init() || curl_global_init(CURL_GLOBAL_DEFAULT)) {
		snprintf(msg, msgsz, "cannot initialise crypto/curl libraries");
		return E(INTERNAL);
	}
	if (!strncmp(cfg->db, "sqlite:", 7))
		ensure_parent(cfg->db + 7);
	if (!cfg->master_key_hex[0])
		ensure_parent(cfg->master_key_file);
	rc = seal_master_key(cfg->master_key_hex, cfg->master_key_file, app->master_key, &created,
			     msg, msgsz);
	if (rc)
		return rc;
	if (created)
		log_msg("info", "startup", "generated a new master key in %s; keep it with the database",
			cfg->master_key_file);
	rc = store_open(cfg->db, cfg->threads + POOL_EXTRA, &app->store, msg, msgsz);
	if (rc)
		return rc;
	rc = app->store->ops->migrate(app->store);
	if (rc) {
		snprintf(msg, msgsz, "database migration failed: %s", store_last_error());
		return rc;
	}
	/* without its key the server still serves everything but signed audit
	 * checkpoints (503 there): docs/audit.md */
	if (audit_signer_load(app->store, app->master_key, time_now_unix(), &app->audit_key, msg,
			      msgsz))
		log_msg("error", "startup", "%s", msg);
	msg[0] = '\0';
	rc = ratelimiter_init(&app->rl, 60 * 1000);
	if (!rc)
		rc = stackcache_init(&app->stacks);
	if (!rc)
		rc = schemacache_init(&app->schemas);
	app->metrics = metrics_new();
	if (rc || !app->metrics) {
		snprintf(msg, msgsz, "out of memory");
		return E(INTERNAL);
	}
	app->disc = calloc(1, sizeof(*app->disc));
	if (!app->disc) {
		snprintf(msg, msgsz, "out of memory");
		return E(INTERNAL);
	}
	rc = discovery_init(app->disc, app->store, cfg->embeddings_url, cfg->embeddings_model,
			    cfg->embeddings_api_key, msg, msgsz);
	if (rc)
		return rc;
	{
		struct dx_stats xs;

		dindex_stats(app->disc->ix, &xs);
		log_msg("info", "startup",
			"discovery index ready in %.0f ms: %zu agents, %zu postings, %zu bytes (%s%s)",
			app->disc->load_ms, xs.agents, xs.postings, xs.bytes,
			cfg->embeddings_url[0] ? "provider " : "built-in embedder only",
			cfg->embeddings_url[0] ? cfg->embeddings_model : "");
	}
	rc = delegator_new(app, &app->delegator);
	if (rc) {
		snprintf(msg, msgsz, "cannot start the delegation threads");
		return rc;
	}
	rc = notifier_new(app, &app->notifier);
	if (rc) {
		snprintf(msg, msgsz, "cannot start the notifier thread");
		return rc;
	}
	rc = audit_appender_new(app->store, &app->appender);
	if (rc) {
		snprintf(msg, msgsz, "cannot start the audit appender thread");
		return rc;
	}
	rc = billing_dispatcher_new(app, &app->billing);
	if (rc)
		snprintf(msg, msgsz, "cannot start the billing dispatcher");
	return rc;
}

static void stop(struct app *app)
{
	notifier_free(app->notifier); /* no request can poke it any more */
	app->notifier = NULL;
	audit_appender_free(app->appender);
	app->appender = NULL;
	billing_dispatcher_free(app->billing);
	app->billing = NULL;
	delegator_free(app->delegator);
	app->delegator = NULL;
	if (app->disc) {
		discovery_release(app->disc);
		free(app->disc);
		app->disc = NULL;
	}
	if (app->store)
		app->store->ops->close(app->store);
	metrics_free(app->metrics);
	stackcache_release(&app->stacks);
	schemacache_release(&app->schemas);
	if (app->rl.slots)
		ratelimiter_release(&app->rl);
	curl_global_cleanup();
}

int serve_main(int argc, char **argv)
{
	static struct app app;
	struct config cfg;
	struct server *srv = NULL;
	char msg[1024] = "", addr[300];
	sigset_t set;
	int rc, sig = 0;

	rc = config_load(&cfg, argc, argv, msg, sizeof(msg));
	if (rc == 1)
		return 0;
	if (rc) {
		fprintf(stderr, "nexra serve: %s\n", msg);
		return 2;
	}
	app.cfg = &cfg;
	/* Block the signals before any thread exists: every thread inherits
	 * the mask, and only sigwait below receives them. */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &set, NULL);

	rc = start(&app, &cfg, msg, sizeof(msg));
	if (!rc)
		rc = server_start(&app, cfg.listen, &srv, addr, sizeof(addr), msg, sizeof(msg));
	if (rc) {
		log_msg("error", "startup", "%s", msg);
		fprintf(stderr, "nexra serve: %s\n", msg);
		stop(&app);
		return 1;
	}
	log_msg("info", "startup", "listening on http://%s db=%s dev=%d threads=%d", addr,
		app.store->ops->name, cfg.dev, cfg.threads);
	printf("listening on http://%s\n", addr);
	fflush(stdout);

	sigdelset(&set, SIGPIPE);
	while (sig != SIGTERM && sig != SIGINT)
		if (sigwait(&set, &sig))
			break;
	log_msg("info", "shutdown", "signal %d: finishing in-flight requests", sig);
	atomic_store(&app.shutting_down, 1);
	server_drain(srv, cfg.shutdown_grace_s);
	/* ends what still waits on a callee and answers it, then the server */
	delegator_free(app.delegator);
	app.delegator = NULL;
	server_free(srv);
	stop(&app);
	log_msg("info", "shutdown", "stopped cleanly");
	return 0;
}
