/*
 * The storage interface: one function table, two backends (sqlite.c,
 * postgres.c), after git's ref backends. Feature modules reach the database
 * only through these operations; each operation is one whole unit of domain
 * work and is atomic on its own (a backend runs it in one transaction where
 * it touches more than one row), so callers never hold a transaction open.
 *
 * Invariants every backend keeps:
 *  - every row belongs to an org and every query is scoped by org_id: an
 *    object of another org is reported exactly like a missing one;
 *  - a 0 return means the write is committed and durable (SQLite WAL with
 *    synchronous=FULL, PostgreSQL synchronous_commit=on);
 *  - operations are safe to call from many threads at once (each backend
 *    keeps a pool of connections) and, on PostgreSQL, from many processes.
 *
 * Returns: 0, E(NOT_FOUND), E(CONFLICT) (a uniqueness or state rule), or
 * E(INTERNAL) for a database failure (the backend keeps the database's own
 * message in store_last_error() of the calling thread for the log).
 *
 * Ownership: input structs are borrowed. Output structs are filled by the
 * backend; struct agent owns its heap strings (agent_release frees them).
 * List operations call the callback once per row with a borrowed row that is
 * valid only during the call; a non-zero callback return stops the listing
 * and is returned.
 */
#ifndef NEXRA_STORE_STORE_H
#define NEXRA_STORE_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "core/rand.h"

#define ORG_NAME_MAX 200
#define KEY_NAME_MAX 100
#define AGENT_ID_MAX 128
#define KEY_LOOKUP_LEN 12
#define KEY_PREFIX_LEN 16
#define UTF8_MAX 4 /* bytes per character: limits count characters */
#define POLICY_NAME_MAX 200

enum key_kind { KEY_LIVE = 0, KEY_TEST = 1 };

struct org {
	char org_id[ID_MAX];
	char name[ORG_NAME_MAX * UTF8_MAX + 1];
	char plan[16];      /* "starter" | "growth" */
	int64_t created_at; /* unix seconds */
};

struct api_key {
	char key_id[ID_MAX];
	char org_id[ID_MAX];
	char lookup[KEY_LOOKUP_LEN + 1];  /* non-secret lookup id, unique */
	unsigned char hash[32];           /* SHA-256 of the whole key */
	int kind;                         /* enum key_kind */
	char name[KEY_NAME_MAX * UTF8_MAX + 1];
	char prefix[KEY_PREFIX_LEN + 1];  /* first characters, for display */
	int64_t created_at;
	int64_t revoked_at;               /* 0 while active */
};

/* An authenticated key with its org (key_by_lookup's result). */
struct key_auth {
	struct api_key key;
	struct org org;
};

struct agent {
	char org_id[ID_MAX];
	char agent_id[AGENT_ID_MAX + 1];
	char *name;                 /* owned */
	char *description;          /* owned */
	char capability_type[16];
	char *webhook_url;          /* owned */
	unsigned char *secret_sealed; /* owned; nonce || ciphertext (crypto/seal.h) */
	size_t secret_sealed_len;
	int64_t per_call_micros;
	int64_t p99_latency_ms;
	double availability;
	char *input_schema;         /* owned; compact JSON text */
	char *output_schema;        /* owned; compact JSON text */
	int is_public;
	char status[16];            /* probationary | active | paused */
	char prior_status[16];      /* status to restore on activate ("" if none) */
	double trust_score;
	char *embedding_id;         /* owned; NULL until embedded */
	int64_t registered_at;
	int64_t updated_at;
};

void agent_release(struct agent *a); /* frees owned strings; a may be reused */

struct agent_filter {
	const char *org_id;
	const char *status;          /* NULL: any */
	const char *capability_type; /* NULL: any */
};

/* A named policy of an org: its current version and stack placement. */
struct policy {
	char policy_id[ID_MAX];
	char org_id[ID_MAX];
	char name[POLICY_NAME_MAX * UTF8_MAX + 1];
	int version;        /* the current (latest) version, from 1 */
	int priority;       /* lower evaluates earlier */
	int enabled;
	int64_t seq;        /* creation order: breaks priority ties */
	int64_t created_at;
	int64_t updated_at;
	char *yaml;         /* owned; the current version's text, or NULL in lists */
};

void policy_release(struct policy *p); /* frees yaml; p may be reused */

#define CAPABILITY_MAX 64

/* A delegation's decision: its inputs (for exact replay) and outcome. */
struct delegation_record {
	char delegation_id[ID_MAX];
	char org_id[ID_MAX];
	char caller_agent_id[AGENT_ID_MAX + 1];
	char callee_agent_id[AGENT_ID_MAX + 1]; /* "" when there was none */
	char capability[CAPABILITY_MAX + 1];
	int64_t budget_cap_micros;
	int has_trust;          /* callee_trust known (there was a callee) */
	double callee_trust;
	int callee_circuit_open;
	char decision[20];      /* allow | block | pending_approval */
	char policy_id[ID_MAX]; /* "" when no rule decided */
	int policy_version;
	int64_t created_at;
};

struct store;

struct store_ops {
	const char *name; /* "sqlite" | "postgres" */

	/* Close every connection; the store is freed. */
	void (*close)(struct store *s);

	/* Apply pending migrations (store/migrations.h) in order; safe when
	 * several processes start at once. */
	int (*migrate)(struct store *s);

	/* Org plus its first live and test keys, atomically. CONFLICT if an
	 * id is taken (callers retry with new random ids). */
	int (*org_create)(struct store *s, const struct org *o, const struct api_key *live,
			  const struct api_key *test);
	int (*org_get)(struct store *s, const char *org_id, struct org *out);

	int (*key_create)(struct store *s, const struct api_key *k);
	/* The key (revoked or not) whose lookup id is lookup, with its org. */
	int (*key_by_lookup)(struct store *s, const char *lookup, struct key_auth *out);
	/* Keys of org, newest first (created_at desc, key_id desc). */
	int (*key_list)(struct store *s, const char *org_id, int limit, int offset,
			int (*cb)(void *ctx, const struct api_key *k), void *ctx);
	/* Revoke key_id of org at now. Already revoked: 0 with its first
	 * revoked_at. Refuses (CONFLICT) to revoke the org's last active live
	 * key; the check and the update are atomic. *revoked_at is set. */
	int (*key_revoke)(struct store *s, const char *org_id, const char *key_id, int64_t now,
			  int64_t *revoked_at);

	/* New agent (CONFLICT if org_id/agent_id exists). All fields stored. */
	int (*agent_insert)(struct store *s, const struct agent *a);
	/* Replace the definition (name, description, capability_type,
	 * webhook_url, secret, pricing, sla, schemas, is_public, updated_at) of
	 * an existing agent; status, trust, registered_at are kept. */
	int (*agent_update)(struct store *s, const struct agent *a);
	int (*agent_get)(struct store *s, const char *org_id, const char *agent_id,
			 struct agent *out);
	/* Agents matching f, ordered by registered_at then agent_id. */
	int (*agent_list)(struct store *s, const struct agent_filter *f, int limit, int offset,
			  int (*cb)(void *ctx, const struct agent *a), void *ctx);
	/* paused=1: remember the current status in prior_status and set
	 * "paused" (no-op if already paused). paused=0: restore prior_status
	 * (no-op if not paused). updated_at = now. */
	int (*agent_set_paused)(struct store *s, const char *org_id, const char *agent_id,
				int paused, int64_t now);
	/* Just the status (X-Agent-ID checks on every request: cheap). */
	int (*agent_status)(struct store *s, const char *org_id, const char *agent_id,
			    char status[16]);

	/* Upload a policy: when the org has none named name, create it with
	 * id new_policy_id at version 1; otherwise add its next version. Either
	 * way priority and enabled are set and the text is kept as that
	 * version, atomically. *out is the policy as stored (with yaml). */
	int (*policy_put)(struct store *s, const char *org_id, const char *name,
			  const char *yaml, int priority, int enabled, int64_t now,
			  const char *new_policy_id, struct policy *out);
	/* The policy with its current version's text. */
	int (*policy_get)(struct store *s, const char *org_id, const char *policy_id,
			  struct policy *out);
	/* Every version of a policy, oldest first (cb gets version and time). */
	int (*policy_versions)(struct store *s, const char *org_id, const char *policy_id,
			       int (*cb)(void *ctx, int version, int64_t created_at), void *ctx);
	/* The text of one version (*yaml malloc'd; caller frees). */
	int (*policy_version_yaml)(struct store *s, const char *org_id, const char *policy_id,
				   int version, char **yaml);
	/* Policies of org ordered by priority then creation (yaml NULL). */
	int (*policy_list)(struct store *s, const char *org_id, int limit, int offset,
			   int (*cb)(void *ctx, const struct policy *p), void *ctx);
	/* Set enabled and/or priority (NULL: keep); updated_at = now. */
	int (*policy_patch)(struct store *s, const char *org_id, const char *policy_id,
			    const int *enabled, const int *priority, int64_t now);
	/* The org's enabled policies in stack order (priority, then creation),
	 * each with its current version's text: what the engine compiles. */
	int (*policy_stack)(struct store *s, const char *org_id,
			    int (*cb)(void *ctx, const struct policy *p), void *ctx);
	/* A stamp that changes, in the same transaction, with any change to
	 * the org's policies: compiled stacks are cached under it. */
	int (*policy_stamp)(struct store *s, const char *org_id, int64_t *stamp);

	/* Record a delegation's decision (CONFLICT if the id exists). */
	int (*delegation_insert)(struct store *s, const struct delegation_record *d);
	/* The org's delegations with from <= created_at < to, oldest first
	 * (ties by id), at most limit of them. */
	int (*delegation_scan)(struct store *s, const char *org_id, int64_t from, int64_t to,
			       int limit, int (*cb)(void *ctx, const struct delegation_record *d),
			       void *ctx);
};

struct store {
	const struct store_ops *ops;
};

/* Open by URI: "sqlite:PATH" or "postgres://..." / "postgresql://...".
 * pool is the number of connections to keep. On failure returns an error
 * and writes a message for the person who started the server to msg. */
int store_open(const char *uri, int pool, struct store **out, char *msg, size_t msgsz);

/* Backend constructors (store_open dispatches). */
int store_sqlite_open(const char *path, int pool, struct store **out, char *msg, size_t msgsz);
int store_pg_open(const char *conninfo, int pool, struct store **out, char *msg, size_t msgsz);

/* Message of the last E(INTERNAL) on this thread ("" if none). */
const char *store_last_error(void);
void store_set_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
