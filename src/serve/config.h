/*
 * Server configuration: flags, then NEXRA_* environment variables, then
 * defaults (DESIGN.md). The table in config.c names each key once with its
 * flag, its variable and its default; `nexra serve --help` prints it.
 */
#ifndef NEXRA_SERVE_CONFIG_H
#define NEXRA_SERVE_CONFIG_H

#include <stddef.h>

enum signup_mode { SIGNUP_OPEN, SIGNUP_ADMIN, SIGNUP_CLOSED };

struct config {
	char listen[256];          /* HOST:PORT */
	char db[1024];             /* sqlite:PATH | postgres://... */
	int dev;                   /* --dev: http/loopback webhooks, open sign-up */
	enum signup_mode signup;
	char admin_token[256];     /* NEXRA_ADMIN_TOKEN */
	char master_key_file[1024];
	char master_key_hex[80];   /* NEXRA_MASTER_KEY */
	int threads;               /* HTTP worker threads */
	int limit_starter;         /* requests per minute; 0 = unlimited */
	int limit_growth;
	int shutdown_grace_s;      /* how long in-flight requests may take on stop */
	char embeddings_url[1024]; /* OpenAI-compatible embeddings endpoint; "" none */
	char embeddings_model[256];
	char embeddings_api_key[512]; /* NEXRA_EMBEDDINGS_API_KEY */
	char public_url[512];      /* --public-url: base of links in notifications ("" none) */
	char smtp_url[1024];       /* --smtp-url: smtp(s)://host[:port] for email channels */
	char smtp_from[256];       /* --smtp-from: sender address */
	char smtp_user[256];       /* --smtp-user */
	char smtp_password[256];   /* NEXRA_SMTP_PASSWORD */
	int notify_retry_s;        /* first retry delay of a failed notification */
	char stripe_api_base[512]; /* Stripe's API root, no trailing slash */
};

/* Fill cfg from argv (after "serve"), the environment and defaults. On a
 * bad flag or value returns E(VALIDATION) with a message in msg. Returns 1
 * when --help was asked (usage printed). */
int config_load(struct config *cfg, int argc, char **argv, char *msg, size_t msgsz);

/* Requests per minute for a plan name ("starter" | "growth"). */
int config_plan_limit(const struct config *cfg, const char *plan);

#endif
