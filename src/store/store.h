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

/*
 * A delegation through its whole life (migration 0004). rec holds the
 * decision inputs; the rest is the lifecycle. Statuses: pending_approval,
 * dispatched (open: budget held), then exactly one final status:
 * completed, failed, timed_out, blocked, expired. Owned strings are freed
 * by delegation_release.
 */
#define DELEGATION_STATUS_MAX 20
#define APPROVER_MAX 200          /* characters */
#define DECISION_REASON_MAX 1000  /* characters */
#define PERIOD_LEN 8 /* "YYYY-MM" + NUL */

struct delegation {
	struct delegation_record rec;
	char status[DELEGATION_STATUS_MAX];
	char key_id[ID_MAX];          /* the API key that asked */
	char task_type[CAPABILITY_MAX + 1];
	char *task_input;             /* owned; compact JSON text */
	char *context_scope;          /* owned; compact JSON array text */
	char *policy_result;          /* owned; compact JSON object text */
	char policy_ref[POLICY_NAME_MAX * UTF8_MAX + 1]; /* deciding policy's name, "" none */
	int64_t timeout_ms;
	char *callback_url;           /* owned; NULL: synchronous */
	char period[PERIOD_LEN];      /* budget month the hold/charge is against */
	int64_t hold_micros;          /* held now; 0 once final */
	int64_t budget_limit_micros;  /* org monthly budget at open; -1 unlimited */
	int64_t cost_micros;          /* charged (<= cap) */
	int64_t reported_cost_micros; /* what the callee said; -1 none */
	int overrun;                  /* reported above the cap: charged at the cap */
	int64_t llm_tokens;           /* -1 none */
	int64_t latency_ms;           /* -1 none */
	char *result;                 /* owned; JSON text; NULL none */
	char error_code[32];          /* err_code() of the failure, "" none */
	char *error_message;          /* owned; NULL none */
	int64_t audit_event;          /* 0 until final */
	double trust_before, trust_after; /* NaN: no callee / not final */
	int64_t budget_remaining_micros;  /* after this delegation; -1 unlimited */
	int64_t dispatched_at, expires_at, settled_at; /* unix seconds; 0 none */
	/* A person's decision on a pending approval (docs/approvals.md). While
	 * pending, expires_at is the approval deadline (0: none). */
	char decided[12];             /* "", "approved", "rejected" */
	char decided_by_key_id[ID_MAX];
	char decided_by_key_name[KEY_NAME_MAX * UTF8_MAX + 1];
	char approver[APPROVER_MAX * UTF8_MAX + 1]; /* "" none */
	int64_t decided_at;           /* unix seconds; 0 undecided */
	char *decision_reason;        /* owned; NULL none */
};

void delegation_release(struct delegation *d); /* frees owned strings; d may be reused */

struct delegation_filter {
	const char *org_id;
	const char *agent_id; /* NULL: any; else caller or callee */
	const char *status;   /* NULL: any */
	int64_t from, to;     /* from <= created_at < to; 0 / INT64_MAX for open ends */
};

/* The audit entry's record of a person's decision: compact JSON text
 * (malloc'd), or NULL when d was not decided or out of memory (*oom set). */
char *delegation_approval_json(const struct delegation *d, int *oom);

/*
 * Notifications (migration 0005; docs/notifications.md). A channel is where
 * an org's notifications go; a delivery is one event for one channel, unique
 * per (channel, event, subject), so an event reaches each channel once
 * whichever process finds it. Strings are borrowed both ways: inputs for the
 * call, rows handed to callbacks for the callback.
 */
#define NOTIFY_KIND_MAX 8         /* slack | email | webhook */
#define NOTIFY_EVENT_MAX 24       /* approval_requested | budget_alert */
#define NOTIFY_STATE_MAX 8        /* pending | sent | dead */
#define NOTIFY_NAME_MAX 100

struct notify_channel {
	char channel_id[ID_MAX];
	char org_id[ID_MAX];
	char kind[NOTIFY_KIND_MAX];
	char name[NOTIFY_NAME_MAX * UTF8_MAX + 1];
	const char *target;                 /* address, URL, or a Slack URL masked */
	const unsigned char *secret_sealed; /* NULL: none */
	size_t secret_sealed_len;
	int64_t created_at;
};

struct notify_delivery {
	char delivery_id[ID_MAX];
	char org_id[ID_MAX];
	char channel_id[ID_MAX];
	char channel_kind[NOTIFY_KIND_MAX];
	char event[NOTIFY_EVENT_MAX];
	char subject_id[ID_MAX];
	char state[NOTIFY_STATE_MAX];
	int64_t attempts, next_attempt_at, created_at, sent_at;
	const char *last_error;
	const char *payload;                /* the event, JSON */
	/* notify_claim only: the channel's target and sealed secret */
	const char *target;
	const unsigned char *secret_sealed;
	size_t secret_sealed_len;
};

/* One budget alert: the org's month crossed its alert threshold. */
struct budget_alert {
	const char *org_id;
	const char *period;
	int64_t spent_micros, held_micros, limit_micros;
	double threshold;
};

/*
 * One unit of ledger work. ledger_apply runs a batch of them in one
 * transaction (one fsync for the batch: group commit); each op succeeds or
 * fails alone (a failing op leaves no trace and sets its rc).
 *
 * LEDGER_OPEN inserts d (d->status: dispatched, pending_approval or
 * blocked; d->rec.created_at, period, budget_limit_micros set).
 *  - idem_key non-NULL: the org's key is claimed for d's id first. When the
 *    key exists from the last 24 h (older rows are replaced): same
 *    idem_hash -> rc 0, idem IDEM_EXISTING, idem_delegation_id set, nothing
 *    else written; other hash -> rc 0, idem IDEM_MISMATCH, nothing written.
 *  - dispatched / pending_approval: d->rec.budget_cap_micros is held in
 *    budget_periods (org, period): only if limit < 0 or spent + held + cap
 *    <= limit, atomically (also across processes). If it does not fit, d is
 *    stored blocked instead with error_code BUDGET_EXCEEDED (budget_refused
 *    set) and settled at once like any blocked one.
 *  - blocked: settled in the same transaction (see SETTLE), cost 0.
 *  On return d->status, hold_micros, error_code reflect what was stored;
 *  for a blocked one the SETTLE outputs are filled too.
 *
 * LEDGER_SETTLE ends the open delegation (d->rec.org_id,
 * d->rec.delegation_id) with d->status final (completed, failed, timed_out,
 * blocked, expired) and its outcome fields (cost_micros <= the hold,
 * reported_cost_micros, overrun, llm_tokens, latency_ms, result,
 * error_code, error_message, settled_at). rc CONFLICT when it is not open
 * any more (someone settled it first: nothing written). In one transaction:
 *  - the row's final status and usage; hold_micros 0;
 *  - budget_periods: held -= hold, spent += cost_micros;
 *  - one audit_log entry: event_id = ++orgs.audit_seq (serialized per org,
 *    also across processes), decision ALLOW (completed/failed/timed_out),
 *    BLOCK (blocked/expired), with cost, budget_remaining (limit - spent -
 *    held after, -1 when unlimited) and trust before/after;
 *  - the callee (if any) for completed/failed/timed_out: trust_score +=
 *    trust_alpha * (trust_signal - trust_score); settled_count + 1;
 *    completed_count + 1 when completed; a probationary callee with
 *    completed_count >= promote_after becomes active. For blocked/expired
 *    trust is read, not changed (before == after);
 *  - completed: a billing_events row (billing_id = "bill_" + delegation
 *    id, amount = cost_micros, state pending, next_attempt_at = now),
 *    at most one per delegation;
 *  - failed/timed_out with cb_max_failures > 0: an agent_failures row, and
 *    if the callee's failures with at > now - cb_window_seconds reach
 *    cb_max_failures it is paused (prior_status kept, as agent_set_paused)
 *    and circuit_opened is set.
 *  Outputs in d: audit_event, budget_remaining_micros, trust_before,
 *  trust_after, settled_at.
 */
/*
 * LEDGER_DECIDE records a person's decision (d->decided "approved" or
 * "rejected", decided_by_key_id/_name, approver, decision_reason, and
 * decided_at, which is also the time of the check) on the delegation
 * (d->rec.org_id, d->rec.delegation_id). Only while it is pending_approval
 * and its deadline has not passed (expires_at 0 or > decided_at): else
 * CONFLICT (NOT_FOUND when there is no such delegation), nothing written.
 *  - approved: status dispatched, dispatched_at and expires_at from d; the
 *    hold stays. d->hold_micros and budget_remaining_micros are set.
 *  - rejected: settled as blocked (SETTLE, cost 0, the hold released) with
 *    d->error_message; the audit entry carries the decision
 *    (delegation_approval_json). d holds the SETTLE outputs.
 * Every SETTLE writes delegation_approval_json(d) into its audit entry, so
 * an approved delegation's settlement must be given its decided fields.
 */
enum ledger_kind { LEDGER_OPEN, LEDGER_SETTLE, LEDGER_DECIDE };
enum ledger_idem { IDEM_NEW = 0, IDEM_EXISTING, IDEM_MISMATCH };

struct ledger_op {
	enum ledger_kind kind;
	struct delegation *d;         /* borrowed; outputs written into it */
	const char *idem_key;         /* OPEN: NULL or the Idempotency-Key */
	unsigned char idem_hash[32];  /* OPEN: SHA-256 of the request body */
	double trust_signal;          /* SETTLE: outcome quality in [0, 1] */
	double trust_alpha;           /* SETTLE: weight of this outcome, (0, 1] */
	int64_t promote_after;        /* SETTLE: completions to leave probation */
	int64_t cb_max_failures;      /* SETTLE: 0 = no circuit breaker */
	int64_t cb_window_seconds;
	int64_t now;                  /* unix seconds */
	/* outputs */
	int rc;
	int idem;                     /* enum ledger_idem */
	char idem_delegation_id[ID_MAX];
	int budget_refused;
	int circuit_opened;
};

/*
 * Discovery (docs/discovery.md). An agent as the in-memory index keeps it:
 * what filters and ranks, plus its current provider vector when it has one.
 * All pointers are borrowed for the callback's duration.
 */
struct agent_brief {
	char org_id[ID_MAX];
	char agent_id[AGENT_ID_MAX + 1];
	const char *name;
	const char *description;
	char capability_type[16];
	int64_t per_call_micros;
	int64_t p99_latency_ms;
	int is_public;
	char status[16];
	double trust_score;
	const char *embedding_id; /* NULL: none */
	int64_t seq;              /* disc_seq: grows with every change, in commit order */
	int64_t row;              /* the backend's row number search hits may name
				   * instead of ids (SQLite's rowid); 0 none */
	/* provider vector for embedding_id, NULL/0 if none */
	const char *vec_model;
	const float *vec;
	int vec_dim;
};

/* A full-text search: terms are lowercase [a-z0-9] words (the caller
 * sanitizes; a backend may quote them as it likes), matched with OR. */
#define SEARCH_TERMS_MAX 32
struct agent_search {
	const char *org_id;          /* the caller's org */
	int cross_org;               /* also other orgs' public agents */
	const char *capability_type; /* NULL: any */
	int64_t max_price_micros;    /* -1: any */
	int64_t max_p99_ms;          /* -1: any */
	const char *terms[SEARCH_TERMS_MAX];
	int nterms;
};

/*
 * One audit_log row (migration 0004), as the verifiable log hashes it
 * (audit/entry.h) and the API shows it. leaf is the leaf hash the tree
 * appender stored for it (has_leaf 0 while the entry is not in the tree).
 */
struct audit_entry {
	char org_id[ID_MAX];
	int64_t event_id;
	char delegation_id[ID_MAX];
	int64_t ts; /* unix seconds */
	char caller_id[AGENT_ID_MAX + 1];
	char callee_id[AGENT_ID_MAX + 1];               /* "" none */
	char policy_ref[POLICY_NAME_MAX * UTF8_MAX + 1]; /* "" none */
	char decision[20];                              /* ALLOW | BLOCK */
	char status[DELEGATION_STATUS_MAX];
	int64_t cost_micros;
	int64_t budget_remaining_micros;                /* -1: no monthly budget */
	double trust_before, trust_after;               /* NaN: none */
	/* a person's decision (audit_log.approval: canonical JSON, members
	 * sorted), NULL none; borrowed, valid only during the callback */
	const char *approval;
	int has_leaf;
	unsigned char leaf[32];
};

struct audit_filter {
	const char *org_id;
	const char *delegation_id; /* NULL: any */
	const char *agent_id;      /* NULL: any; else caller or callee */
	const char *callee_id;     /* NULL: any */
	const char *decision;      /* NULL: any */
	int64_t from, to;          /* from <= ts < to */
};

#define AUDIT_KEY_NAME_MAX 64

/*
 * Billing delivery (migration 0007, docs/billing.md).
 *
 * billing_settings: an org's Stripe connection for one key mode ("live" or
 * "test"); the secret key is sealed by the caller (crypto/seal.h) and
 * stored as given.
 *
 * billing_events are the outbox rows the ledger writes at settlement
 * (state pending). A dispatcher claims due ones under a lease: claimed rows
 * carry lease_owner and lease_until, and no other claim takes them until
 * the lease has passed, in this process or any other on the database.
 */
#define STRIPE_FIELD_MAX 255
#define BILLING_ID_MAX (ID_MAX + 8) /* "bill_" + delegation id */
#define BILLING_ERROR_MAX 512
#define BILLING_OWNER_MAX 48

struct billing_settings {
	char org_id[ID_MAX];
	char mode[8];                 /* "live" | "test" */
	unsigned char *secret_sealed; /* owned */
	size_t secret_sealed_len;
	char customer_id[STRIPE_FIELD_MAX + 1];
	char meter_event_name[STRIPE_FIELD_MAX + 1];
	int64_t updated_at;
};

void billing_settings_release(struct billing_settings *b); /* frees the secret; reusable */

struct billing_event {
	char billing_id[BILLING_ID_MAX];
	char org_id[ID_MAX];
	char delegation_id[ID_MAX];
	char caller_agent_id[AGENT_ID_MAX + 1];
	char callee_agent_id[AGENT_ID_MAX + 1];
	int64_t amount_micros;
	char currency[8];
	char period[PERIOD_LEN];
	char state[8];             /* pending | sent | dead */
	int64_t attempts;          /* sends started (a claim counts one) */
	int64_t next_attempt_at;   /* unix seconds */
	char last_error[BILLING_ERROR_MAX];
	int64_t created_at;        /* settlement time: the meter event's timestamp */
	int64_t sent_at;           /* 0 until sent */
};

/* What became of one claimed event (billing_finish). */
enum billing_outcome {
	BILLING_SENT,    /* Stripe accepted it: state sent (whoever holds the lease) */
	BILLING_RETRY,   /* try again at next_attempt_at, with error as last_error */
	BILLING_DEAD,    /* permanent: state dead, error as last_error */
	BILLING_RELEASE, /* not tried to the end (shutdown): lease dropped, due now */
};

struct billing_result {
	const char *billing_id;
	enum billing_outcome outcome;
	int64_t next_attempt_at; /* RETRY */
	const char *error;       /* RETRY, DEAD */
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
	 * webhook_url, secret, pricing, sla, schemas, is_public, embedding_id:
	 * the new text's, updated_at) of an existing agent; status, trust,
	 * registered_at are kept. */
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

	/* Run ops[0..n) in one transaction (see struct ledger_op). Returns 0
	 * when the batch committed (each op's own outcome in its rc), or
	 * E(INTERNAL) when the transaction failed as a whole (every rc set to
	 * it, nothing written). */
	int (*ledger_apply)(struct store *s, struct ledger_op *ops, size_t n);
	/* One delegation of the org, every field. */
	int (*delegation_get)(struct store *s, const char *org_id, const char *delegation_id,
			      struct delegation *out);
	/* Delegations matching f, newest first (created_at desc, id desc). */
	int (*delegation_list)(struct store *s, const struct delegation_filter *f, int limit,
			       int offset, int (*cb)(void *ctx, const struct delegation *d),
			       void *ctx);
	/* Open delegations of any org that must be ended by the sweeper,
	 * longest overdue first: dispatched with expires_at < before (orphans
	 * of a stopped process), and pending_approval with an approval
	 * deadline 0 < expires_at <= now (expired). */
	int (*delegation_overdue)(struct store *s, int64_t before, int64_t now, int limit,
				  int (*cb)(void *ctx, const struct delegation *d), void *ctx);
	/* The org's budget month: spent and held (0, 0 when no row). */
	int (*budget_get)(struct store *s, const char *org_id, const char *period,
			  int64_t *spent_micros, int64_t *held_micros);

	/* Discovery. A stamp that changes (after the commit) whenever any
	 * agent row changes, in any process: SQLite reads the shared
	 * generation counter (no query), PostgreSQL the largest disc_seq. */
	int (*agent_stamp)(struct store *s, int64_t *stamp);
	/* Agents of every org with disc_seq > after, in disc_seq order, at
	 * most limit of them (paused ones included: the index drops them). */
	int (*agent_changes)(struct store *s, int64_t after, int limit,
			     int (*cb)(void *ctx, const struct agent_brief *a), void *ctx);
	/* The best full-text matches (SQLite FTS5 bm25 with name weighted over
	 * description; PostgreSQL ts_rank_cd over weighted tsvectors), best
	 * first, score > 0 and larger is better, at most limit. A hit names
	 * its agent by org_id and agent_id, or by row (agent_brief.row) with
	 * NULL ids. The filters of q (visibility, paused, type, price, p99)
	 * may or may not have been applied: SQLite does not apply them
	 * (filtering there needs a join per matching row that costs more than
	 * the ranking), PostgreSQL does; callers filter. */
	int (*agent_search)(struct store *s, const struct agent_search *q, int limit,
			    int (*cb)(void *ctx, const char *org_id, const char *agent_id,
				      int64_t row, double score),
			    void *ctx);
	/* Keep a provider vector for the agent's text embedding_id, and bump
	 * its disc_seq (so every process loads it), atomically. NOT_FOUND when
	 * the agent's embedding_id is no longer embedding_id (its text changed
	 * since: the vector is stale and nothing is written). */
	int (*embedding_put)(struct store *s, const char *org_id, const char *agent_id,
			     const char *embedding_id, const char *model, const float *vec,
			     int dim, int64_t now);
	/* ---- notifications (sqlite_notify.c, pg_notify.c) ---- */
	/* A new channel, unless the org has max_per_org channels already
	 * (CONFLICT); the count and the insert are atomic. */
	int (*channel_create)(struct store *s, const struct notify_channel *ch, int max_per_org);
	/* The org's channels, oldest first (deleted ones are not listed). */
	int (*channel_list)(struct store *s, const char *org_id, int limit, int offset,
			    int (*cb)(void *ctx, const struct notify_channel *ch), void *ctx);
	/* Delete a channel (NOT_FOUND if the org has no such live channel);
	 * its pending deliveries become dead ("channel deleted"). */
	int (*channel_delete)(struct store *s, const char *org_id, const char *channel_id,
			      int64_t now);
	/* pending_approval delegations of any org for which a channel of the
	 * org created at or before the delegation has no delivery yet, oldest
	 * first; d has rec, task_input, policy_result, policy_ref, expires_at. */
	int (*notify_unsent_approvals)(struct store *s, int limit,
				       int (*cb)(void *ctx, const struct delegation *d), void *ctx);
	/* One pending delivery of event/subject_id (payload) per channel of
	 * the org created at or before since (all channels when since < 0),
	 * skipping those that exist; *created counts the new rows. */
	int (*notify_enqueue)(struct store *s, const char *org_id, const char *event,
			      const char *subject_id, int64_t since, const char *payload,
			      int64_t now, int *created);
	/* Orgs with a budget row for period, at least one channel, no alert for
	 * period yet, and a delegation created at or after since. */
	int (*budget_alert_candidates)(struct store *s, const char *period, int64_t since,
				       int limit,
				       int (*cb)(void *ctx, const char *org_id, int64_t spent,
						 int64_t held),
				       void *ctx);
	/* Record the org's alert for the period and enqueue payload to every
	 * channel of the org, atomically; *created 0 when the alert existed
	 * (nothing written). */
	int (*budget_alert_record)(struct store *s, const struct budget_alert *a,
				   const char *payload, int64_t now, int *created);
	/* Claim up to limit pending deliveries due at now (next_attempt_at <=
	 * now): attempts + 1, next_attempt_at = lease_until, so no other
	 * process takes them meanwhile (SKIP LOCKED on PostgreSQL, the write
	 * lock on SQLite). Rows carry the channel's target and secret. */
	int (*notify_claim)(struct store *s, int64_t now, int64_t lease_until, int limit,
			    int (*cb)(void *ctx, const struct notify_delivery *d), void *ctx);
	/* A claimed delivery's outcome: state sent (sent_at = now), pending
	 * (retry at next_attempt_at) or dead; last_error kept. Only a pending
	 * row changes (a deleted channel's dead row stays dead). */
	int (*notify_finish)(struct store *s, const char *delivery_id, const char *state,
			     int64_t next_attempt_at, const char *last_error, int64_t now);
	/* The org's deliveries (state NULL: any), newest first. */
	int (*notify_delivery_list)(struct store *s, const char *org_id, const char *state,
				    int limit, int offset,
				    int (*cb)(void *ctx, const struct notify_delivery *d),
				    void *ctx);
	/*
	 * The verifiable audit log (docs/audit.md; migration 0006). The tree
	 * appender: under the org's tree lock (SQLite's write lock; on
	 * PostgreSQL the org's audit_trees row, FOR UPDATE), append to the
	 * org's Merkle tree the audit_log entries after its size, in event_id
	 * order, at most max of them, storing each completed subtree hash, and
	 * stop at a gap in event ids. *size is the tree size after, *appended
	 * how many were added. max 0 only reads the size.
	 */
	int (*audit_extend)(struct store *s, const char *org_id, int max, int64_t now,
			    int64_t *size, int *appended);
	/* The org's tree size and its last audit event id (orgs.audit_seq). */
	int (*audit_sizes)(struct store *s, const char *org_id, int64_t *size, int64_t *seq);
	/* Stored subtree hashes (level[i], idx[i]) of the org's tree into
	 * out[i]; INTERNAL when one is missing. */
	int (*audit_nodes)(struct store *s, const char *org_id, size_t n, const int *level,
			   const uint64_t *idx, unsigned char (*out)[32]);
	/* Entries matching f, newest first (event_id desc). */
	int (*audit_list)(struct store *s, const struct audit_filter *f, int limit, int offset,
			  int (*cb)(void *ctx, const struct audit_entry *e), void *ctx);
	/* Entries with after < event_id <= last, oldest first, at most limit,
	 * each with its stored leaf hash (the export's pages). */
	int (*audit_scan)(struct store *s, const char *org_id, int64_t after, int64_t last,
			  int limit, int (*cb)(void *ctx, const struct audit_entry *e), void *ctx);
	/* The smallest and largest event_id of the org's entries with from <=
	 * ts < to (0, 0 when none). */
	int (*audit_range)(struct store *s, const char *org_id, int64_t from, int64_t to,
			   int64_t *first, int64_t *last);
	/* Orgs whose tree is behind their audit log, at most limit. */
	int (*audit_lagging)(struct store *s, int limit,
			     int (*cb)(void *ctx, const char *org_id), void *ctx);
	/* A server-wide sealed key by name (*sealed malloc'd; caller frees). */
	int (*server_key_get)(struct store *s, const char *name, unsigned char **sealed,
			      size_t *len);
	/* Store it unless one of that name exists (CONFLICT then). */
	int (*server_key_add)(struct store *s, const char *name, const unsigned char *sealed,
			      size_t len, int64_t now);
	/* Insert or replace the org's settings for b->mode. */
	int (*billing_settings_put)(struct store *s, const struct billing_settings *b);
	/* NOT_FOUND when the org has none for mode. */
	int (*billing_settings_get)(struct store *s, const char *org_id, const char *mode,
				    struct billing_settings *out);
	/* NOT_FOUND when there was nothing to delete. */
	int (*billing_settings_delete)(struct store *s, const char *org_id, const char *mode);
	/* Claim up to max due events, oldest due first, of any org that has
	 * live settings: state pending, next_attempt_at <= now, lease_until <=
	 * now. Each claimed row gets lease_owner = owner, lease_until =
	 * lease_until, attempts + 1, atomically, so two claims (threads or
	 * processes) never take the same row while its lease runs. *n claimed
	 * rows are written to out (as they are after the claim). */
	int (*billing_claim)(struct store *s, int64_t now, int64_t lease_until, const char *owner,
			     struct billing_event *out, int max, int *n);
	/* Record what became of claimed events, in one transaction. SENT
	 * applies to a pending row whoever holds its lease (Stripe has it);
	 * RETRY, DEAD and RELEASE only while owner still holds the lease
	 * (otherwise another claim took it over and decides). Each clears the
	 * lease. */
	int (*billing_finish)(struct store *s, const char *owner, const struct billing_result *res,
			      size_t n, int64_t now);
	/* The org's events in state (NULL: any), newest first (created_at
	 * desc, billing_id desc). */
	int (*billing_list)(struct store *s, const char *org_id, const char *state, int limit,
			    int offset, int (*cb)(void *ctx, const struct billing_event *e),
			    void *ctx);
	/* Put a dead event of the org back to pending, due at now, lease
	 * cleared (attempts and last_error kept). NOT_FOUND, or CONFLICT when
	 * it is not dead (nothing changed). *out is the row after. */
	int (*billing_retry)(struct store *s, const char *org_id, const char *billing_id,
			     int64_t now, struct billing_event *out);
	/* Events of every org in state (pending | dead), for /metrics. */
	int (*billing_count)(struct store *s, const char *state, int64_t *n);
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

/* q's terms joined for a backend's full-text syntax: each wrapped in quote
 * (may be "") and separated by sep, into out. 0, or E(INTERNAL) when
 * outsz is too small. */
int store_search_text(const struct agent_search *q, const char *quote, const char *sep,
		      char *out, size_t outsz);

/* Message of the last E(INTERNAL) on this thread ("" if none). */
const char *store_last_error(void);
void store_set_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
