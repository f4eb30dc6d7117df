/*
 * struct app: the server's long-lived state, one per `nexra serve`, owned
 * by serve.c and shared (read-mostly) by every request. Handlers reach the
 * database through app->store and the configuration through app->cfg.
 */
#ifndef NEXRA_SERVE_APP_H
#define NEXRA_SERVE_APP_H

#include <stdatomic.h>

#include "audit/log.h"
#include "auth/ratelimit.h"
#include "crypto/seal.h"
#include "policy/stackcache.h"
#include "registry/schemacache.h"
#include "serve/config.h"
#include "store/store.h"

struct metrics;
struct delegator;
struct discovery;
struct notifier;
struct audit_appender;
struct billing_dispatcher;

struct app {
	const struct config *cfg;
	struct store *store;
	struct ratelimiter rl;
	struct metrics *metrics;
	struct stackcache stacks;  /* compiled policy stacks per org */
	struct schemacache schemas; /* compiled agent I/O schemas */
	struct delegator *delegator; /* ledger writer, outbound client, sweeper */
	struct discovery *disc;      /* lexicon, vector index, embeddings provider */
	struct notifier *notifier;   /* approval notifications and budget alerts */
	struct billing_dispatcher *billing; /* delivers the billing outbox to Stripe */
	unsigned char master_key[SEAL_KEY_LEN];
	struct audit_signer audit_key; /* signs audit checkpoints (audit/log.h) */
	struct audit_appender *appender; /* background audit tree appender */
	atomic_int in_flight;     /* requests received and not yet completed */
	atomic_int shutting_down; /* set on SIGTERM/SIGINT */
};

#endif
