/*
 * `nexra serve` configuration; see config.h. One table row per key: flag,
 * environment variable, default, and a setter that validates. Flags win
 * over the environment, which wins over defaults.
 */
#include "serve/config.h"

#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "approvals/channel.h"
#include "core/err.h"
#include "core/banned.h"

typedef int (*setter)(struct config *c, const char *v, char *msg, size_t msgsz);

static int copy(char *dst, size_t n, const char *v, const char *what, char *msg, size_t msgsz)
{
	if (strlen(v) >= n) {
		snprintf(msg, msgsz, "%s is too long", what);
		return E(VALIDATION);
	}
	snprintf(dst, n, "%s", v);
	return 0;
}

static int parse_int(const char *v, long min, long max, long *out)
{
	char *end;
	long n;

	errno = 0;
	n = strtol(v, &end, 10);
	if (errno || end == v || *end || n < min || n > max)
		return -1;
	*out = n;
	return 0;
}

static int set_listen(struct config *c, const char *v, char *msg, size_t msgsz)
{
	if (!strrchr(v, ':')) {
		snprintf(msg, msgsz, "--listen must be HOST:PORT, got '%s'", v);
		return E(VALIDATION);
	}
	return copy(c->listen, sizeof(c->listen), v, "--listen", msg, msgsz);
}

static int set_db(struct config *c, const char *v, char *msg, size_t msgsz)
{
	if (strncmp(v, "sqlite:", 7) && strncmp(v, "postgres://", 11) &&
	    strncmp(v, "postgresql://", 13)) {
		snprintf(msg, msgsz, "--db must be sqlite:PATH or postgres://..., got '%s'", v);
		return E(VALIDATION);
	}
	return copy(c->db, sizeof(c->db), v, "--db", msg, msgsz);
}

static int set_dev(struct config *c, const char *v, char *msg, size_t msgsz)
{
	if (strcmp(v, "1") && strcmp(v, "0") && strcmp(v, "true") && strcmp(v, "false")) {
		snprintf(msg, msgsz, "NEXRA_DEV must be 1 or 0, got '%s'", v);
		return E(VALIDATION);
	}
	c->dev = !strcmp(v, "1") || !strcmp(v, "true");
	return 0;
}

static int set_signup(struct config *c, const char *v, char *msg, size_t msgsz)
{
	if (!strcmp(v, "open"))
		c->signup = SIGNUP_OPEN;
	else if (!strcmp(v, "admin"))
		c->signup = SIGNUP_ADMIN;
	else if (!strcmp(v, "closed"))
		c->signup = SIGNUP_CLOSED;
	else {
		snprintf(msg, msgsz, "--signup must be open, admin or closed, got '%s'", v);
		return E(VALIDATION);
	}
	return 0;
}

static int set_admin_token(struct config *c, const char *v, char *msg, size_t msgsz)
{
	return copy(c->admin_token, sizeof(c->admin_token), v, "NEXRA_ADMIN_TOKEN", msg, msgsz);
}

static int set_key_file(struct config *c, const char *v, char *msg, size_t msgsz)
{
	return copy(c->master_key_file, sizeof(c->master_key_file), v, "--master-key-file", msg,
		    msgsz);
}

static int set_key_hex(struct config *c, const char *v, char *msg, size_t msgsz)
{
	return copy(c->master_key_hex, sizeof(c->master_key_hex), v, "NEXRA_MASTER_KEY", msg,
		    msgsz);
}

static int set_threads(struct config *c, const char *v, char *msg, size_t msgsz)
{
	long n;

	if (parse_int(v, 1, 64, &n)) {
		snprintf(msg, msgsz, "--threads must be 1..64, got '%s'", v);
		return E(VALIDATION);
	}
	c->threads = (int)n;
	return 0;
}

static int set_grace(struct config *c, const char *v, char *msg, size_t msgsz)
{
	long n;

	if (parse_int(v, 0, 3600, &n)) {
		snprintf(msg, msgsz, "--shutdown-grace must be 0..3600 seconds, got '%s'", v);
		return E(VALIDATION);
	}
	c->shutdown_grace_s = (int)n;
	return 0;
}

static int set_emb_url(struct config *c, const char *v, char *msg, size_t msgsz)
{
	if (*v && strncmp(v, "http://", 7) && strncmp(v, "https://", 8)) {
		snprintf(msg, msgsz, "--embeddings-url must be an http:// or https:// URL, got '%s'", v);
		return E(VALIDATION);
	}
	return copy(c->embeddings_url, sizeof(c->embeddings_url), v, "--embeddings-url", msg, msgsz);
}

static int set_emb_model(struct config *c, const char *v, char *msg, size_t msgsz)
{
	return copy(c->embeddings_model, sizeof(c->embeddings_model), v, "--embeddings-model", msg,
		    msgsz);
}

static int set_emb_key(struct config *c, const char *v, char *msg, size_t msgsz)
{
	return copy(c->embeddings_api_key, sizeof(c->embeddings_api_key), v,
		    "NEXRA_EMBEDDINGS_API_KEY", msg, msgsz);
}

static int set_public_url(struct config *c, const char *v, char *msg, size_t msgsz)
{
	size_t n = strlen(v);

	if ((strncmp(v, "https://", 8) && strncmp(v, "http://", 7)) || strpbrk(v, " \t\r\n?#")) {
		snprintf(msg, msgsz, "--public-url must be an http:// or https:// base URL, got '%s'",
			 v);
		return E(VALIDATION);
	}
	while (n > 0 && v[n - 1] == '/')
		n--;
	if (n >= sizeof(c->public_url)) {
		snprintf(msg, msgsz, "--public-url is too long");
		return E(VALIDATION);
	}
	snprintf(c->public_url, sizeof(c->public_url), "%.*s", (int)n, v);
	return 0;
}

static int set_smtp_url(struct config *c, const char *v, char *msg, size_t msgsz)
{
	if ((strncmp(v, "smtp://", 7) && strncmp(v, "smtps://", 8)) || strpbrk(v, " \t\r\n")) {
		snprintf(msg, msgsz, "--smtp-url must be smtp://HOST[:PORT] or smtps://..., got '%s'",
			 v);
		return E(VALIDATION);
	}
	return copy(c->smtp_url, sizeof(c->smtp_url), v, "--smtp-url", msg, msgsz);
}

static int set_smtp_from(struct config *c, const char *v, char *msg, size_t msgsz)
{
	if (!channel_email_valid(v)) {
		snprintf(msg, msgsz, "--smtp-from must be an email address, got '%s'", v);
		return E(VALIDATION);
	}
	return copy(c->smtp_from, sizeof(c->smtp_from), v, "--smtp-from", msg, msgsz);
}

static int set_smtp_user(struct config *c, const char *v, char *msg, size_t msgsz)
{
	return copy(c->smtp_user, sizeof(c->smtp_user), v, "--smtp-user", msg, msgsz);
}

static int set_smtp_password(struct config *c, const char *v, char *msg, size_t msgsz)
{
	return copy(c->smtp_password, sizeof(c->smtp_password), v, "NEXRA_SMTP_PASSWORD", msg,
		    msgsz);
}

static int set_notify_retry(struct config *c, const char *v, char *msg, size_t msgsz)
{
	long n;

	if (parse_int(v, 1, 600, &n)) {
		snprintf(msg, msgsz, "--notify-retry must be 1..600 seconds, got '%s'", v);
		return E(VALIDATION);
	}
	c->notify_retry_s = (int)n;
	return 0;
}

/* http(s)://host[:port][/path] without a query; a trailing slash is dropped.
 * Plain http only with --dev (checked by config_load once all are read). */
static int set_stripe_base(struct config *c, const char *v, char *msg, size_t msgsz)
{
	size_t n = strlen(v);

	if ((strncmp(v, "https://", 8) && strncmp(v, "http://", 7)) || strpbrk(v, "?# \t") ||
	    n <= 8) {
		snprintf(msg, msgsz, "--stripe-api-base must be an http(s):// URL, got '%s'", v);
		return E(VALIDATION);
	}
	while (n > 0 && v[n - 1] == '/')
		n--;
	if (n >= sizeof(c->stripe_api_base)) {
		snprintf(msg, msgsz, "--stripe-api-base is too long");
		return E(VALIDATION);
	}
	snprintf(c->stripe_api_base, sizeof(c->stripe_api_base), "%.*s", (int)n, v);
	return 0;
}

/* "starter=100,growth=1000"; a value of 0 or "off" means unlimited. */
static int set_limits(struct config *c, const char *v, char *msg, size_t msgsz)
{
	char tmp[256], *save = NULL, *item;
	long n;

	if (copy(tmp, sizeof(tmp), v, "--rate-limits", msg, msgsz))
		return E(VALIDATION);
	for (item = strtok_r(tmp, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(item, '=');

		if (!eq)
			goto bad;
		*eq = '\0';
		if (!strcmp(eq + 1, "off"))
			n = 0;
		else if (parse_int(eq + 1, 0, 1000000, &n))
			goto bad;
		if (!strcmp(item, "starter"))
			c->limit_starter = (int)n;
		else if (!strcmp(item, "growth"))
			c->limit_growth = (int)n;
		else
			goto bad;
	}
	return 0;
bad:
	snprintf(msg, msgsz,
		 "--rate-limits must look like starter=100,growth=1000 (0..1000000 or off), got '%s'",
		 v);
	return E(VALIDATION);
}

struct key {
	const char *flag;  /* "--listen" */
	const char *env;   /* "NEXRA_LISTEN" */
	int boolean;       /* flag takes no value (sets "1") */
	setter set;
	const char *help;
};

static const struct key keys[] = {
	{"--listen", "NEXRA_LISTEN", 0, set_listen, "HOST:PORT to listen on (default 127.0.0.1:8000; port 0 picks one)"},
	{"--db", "NEXRA_DB", 0, set_db, "sqlite:PATH (default sqlite:./var/nexra.db) or postgres://..."},
	{"--dev", "NEXRA_DEV", 1, set_dev, "development mode: http:// and loopback webhooks, open sign-up"},
	{"--signup", "NEXRA_SIGNUP", 0, set_signup, "open | admin | closed (default: open with --dev, else admin)"},
	{NULL, "NEXRA_ADMIN_TOKEN", 0, set_admin_token, "bearer token that --signup admin requires"},
	{"--master-key-file", "NEXRA_MASTER_KEY_FILE", 0, set_key_file, "file holding the 64-hex master key (created if missing; default next to the SQLite file, else ./var/master.key)"},
	{NULL, "NEXRA_MASTER_KEY", 0, set_key_hex, "the master key itself, 64 hex chars (wins over the file)"},
	{"--threads", "NEXRA_THREADS", 0, set_threads, "HTTP worker threads (default: number of CPUs)"},
	{"--rate-limits", "NEXRA_RATE_LIMITS", 0, set_limits, "per-plan requests/min, e.g. starter=100,growth=1000 (0 or off: unlimited)"},
	{"--shutdown-grace", "NEXRA_SHUTDOWN_GRACE", 0, set_grace, "seconds in-flight requests may take after SIGTERM (default 10)"},
	{"--embeddings-url", "NEXRA_EMBEDDINGS_URL", 0, set_emb_url, "OpenAI-compatible embeddings endpoint, e.g. http://127.0.0.1:11434/v1/embeddings (default: none, built-in embedder only)"},
	{"--embeddings-model", "NEXRA_EMBEDDINGS_MODEL", 0, set_emb_model, "model name sent to the embeddings endpoint (required with --embeddings-url)"},
	{NULL, "NEXRA_EMBEDDINGS_API_KEY", 0, set_emb_key, "bearer token for the embeddings endpoint (optional)"},
	{"--stripe-api-base", "NEXRA_STRIPE_API_BASE", 0, set_stripe_base, "Stripe API root for billing delivery (default https://api.stripe.com; http:// only with --dev)"},
	{"--public-url", "NEXRA_PUBLIC_URL", 0, set_public_url, "base URL of this API for links in notifications (default: paths only)"},
	{"--smtp-url", "NEXRA_SMTP_URL", 0, set_smtp_url, "SMTP server for email channels: smtp://HOST[:PORT] or smtps://..."},
	{"--smtp-from", "NEXRA_SMTP_FROM", 0, set_smtp_from, "sender address of notification emails (default nexra@localhost.localdomain)"},
	{"--smtp-user", "NEXRA_SMTP_USER", 0, set_smtp_user, "SMTP user name (password in NEXRA_SMTP_PASSWORD)"},
	{NULL, "NEXRA_SMTP_PASSWORD", 0, set_smtp_password, "SMTP password"},
	{"--notify-retry", "NEXRA_NOTIFY_RETRY", 0, set_notify_retry, "seconds before a failed notification's first retry, doubling up to 600 (default 5)"},
};
#define NKEYS (sizeof(keys) / sizeof(keys[0]))

static void usage(void)
{
	printf("usage: nexra serve [options]\n\n");
	for (size_t i = 0; i < NKEYS; i++)
		printf("  %-20s %-24s %s\n", keys[i].flag ? keys[i].flag : "", keys[i].env,
		       keys[i].help);
}

static void defaults(struct config *c)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	memset(c, 0, sizeof(*c));
	snprintf(c->listen, sizeof(c->listen), "127.0.0.1:8000");
	snprintf(c->db, sizeof(c->db), "sqlite:./var/nexra.db");
	c->signup = SIGNUP_ADMIN;
	c->threads = n > 0 && n <= 64 ? (int)n : 2;
	c->limit_starter = 100;
	c->limit_growth = 1000;
	c->shutdown_grace_s = 10;
	snprintf(c->stripe_api_base, sizeof(c->stripe_api_base), "https://api.stripe.com");
	snprintf(c->smtp_from, sizeof(c->smtp_from), "nexra@localhost.localdomain");
	c->notify_retry_s = 5;
}

/* The master key file sits next to the SQLite database unless given. */
static void default_key_file(struct config *c)
{
	char dir[1024];

	if (c->master_key_file[0])
		return;
	if (!strncmp(c->db, "sqlite:", 7)) {
		snprintf(dir, sizeof(dir), "%s", c->db + 7);
		snprintf(c->master_key_file, sizeof(c->master_key_file), "%.1000s/master.key",
			 dirname(dir));
	} else {
		snprintf(c->master_key_file, sizeof(c->master_key_file), "./var/master.key");
	}
}

int config_load(struct config *c, int argc, char **argv, char *msg, size_t msgsz)
{
	int signup_set = 0, rc;

	defaults(c);
	for (size_t k = 0; k < NKEYS; k++) {
		const char *v = getenv(keys[k].env);

		if (v && v[0]) {
			rc = keys[k].set(c, v, msg, msgsz);
			if (rc)
				return rc;
			signup_set |= keys[k].set == set_signup;
		}
	}
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i], *v = NULL;
		const struct key *key = NULL;
		size_t alen;

		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			usage();
			return 1;
		}
		alen = strcspn(a, "=");
		for (size_t k = 0; k < NKEYS; k++)
			if (keys[k].flag && strlen(keys[k].flag) == alen &&
			    !strncmp(keys[k].flag, a, alen))
				key = &keys[k];
		if (!key) {
			snprintf(msg, msgsz, "unknown option '%s' (see nexra serve --help)", a);
			return E(VALIDATION);
		}
		if (key->boolean)
			v = a[alen] == '=' ? a + alen + 1 : "1";
		else if (a[alen] == '=')
			v = a + alen + 1;
		else if (i + 1 < argc)
			v = argv[++i];
		if (!v) {
			snprintf(msg, msgsz, "%s needs a value", key->flag);
			return E(VALIDATION);
		}
		rc = key->set(c, v, msg, msgsz);
		if (rc)
			return rc;
		signup_set |= key->set == set_signup;
	}
	if (!signup_set)
		c->signup = c->dev ? SIGNUP_OPEN : SIGNUP_ADMIN;
	if (c->embeddings_url[0] && !c->embeddings_model[0]) {
		snprintf(msg, msgsz, "--embeddings-url needs --embeddings-model (NEXRA_EMBEDDINGS_MODEL)");
		return E(VALIDATION);
	}
	if (!c->dev && strncmp(c->stripe_api_base, "https://", 8)) {
		snprintf(msg, msgsz, "--stripe-api-base must be https:// outside --dev");
		return E(VALIDATION);
	}
	default_key_file(c);
	return 0;
}

int config_plan_limit(const struct config *c, const char *plan)
{
	return !strcmp(plan, "starter") ? c->limit_starter : c->limit_growth;
}
