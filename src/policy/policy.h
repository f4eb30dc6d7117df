/*
 * Policy documents: the YAML an org uploads, read into plain structs.
 *
 * A policy is a list of rules (and optionally the org's monthly budget).
 * This module only reads and checks the text; policy/stack.h orders many
 * policies into a stack and decides delegations with it. Both halves are
 * pure: bytes in, structs or a decision out, no clock, no I/O, so the API,
 * the CLI (`nexra policy check`) and the fuzzer give the same answers.
 *
 * Reading is strict on purpose, because a policy that means something
 * other than what its author thinks is a security hole:
 *
 * - YAML 1.2 core schema for plain (unquoted) scalars, narrowed: booleans
 *   are exactly `true` and `false` (not yes/no/on/off, not True/TRUE);
 *   numbers are decimal (no 0x/0o, no .inf/.nan); `~`, `null` and an
 *   empty value are null, which no field accepts. A quoted scalar is
 *   always a string, so `"0.5"` is not a number and `"true"` not a
 *   boolean. `*` must be quoted (`capability: "*"`): plain it is an alias.
 * - No anchors, aliases or tags (no billion laughs, no type games), one
 *   document per text, no unknown keys, no duplicate keys.
 * - Money (`max_budget_usd`, `monthly_budget_usd`) is read from the
 *   decimal text itself into integer micro-USD, never through a double:
 *   at most 6 significant decimals (trailing zeros beyond are harmless),
 *   no sign, no exponent.
 * - Everything is bounded by the POLICY_MAX_* limits below.
 *
 * Every error names its place: `line:col: key.path: problem`, e.g.
 * `3:22: rules[0].min_trust_score: must be between 0 and 1, got 1.5`.
 * Lines and columns count from 1; the column is that of the offending
 * value (or key, for unknown and duplicate keys; or the enclosing mapping,
 * for a missing key). The first error in document order is reported.
 */
#ifndef NEXRA_POLICY_POLICY_H
#define NEXRA_POLICY_POLICY_H

#include <stddef.h>
#include <stdint.h>

/* Limits of one document (docs/policies.md lists them for users). */
#define POLICY_MAX_BYTES (256 * 1024) /* YAML text */
#define POLICY_MAX_RULES 2000         /* entries of `rules` */
#define POLICY_MAX_ALLOWLIST 256      /* entries of one caller_allowlist */
#define POLICY_MAX_DEPTH 8            /* nested mappings/lists (the schema needs 4) */
#define POLICY_MAX_NODES 100000       /* scalars + mappings + lists */
#define POLICY_CAPABILITY_MAX 64      /* characters of a capability */
#define POLICY_AGENT_ID_MAX 128       /* as agent ids in the registry */
#define POLICY_BUDGET_MAX_MICROS (1000000LL * 1000000LL)        /* $1,000,000 per delegation */
#define POLICY_MONTHLY_MAX_MICROS (1000000000LL * 1000000LL)    /* $1,000,000,000 a month */
#define POLICY_HITL_TIMEOUT_MAX 2592000                          /* 30 days, in seconds */
#define POLICY_CB_FAILURES_MAX 100000
#define POLICY_CB_WINDOW_MAX 2592000                             /* 30 days, in seconds */
#define POLICY_PRIORITY_MIN (-1000000)
#define POLICY_PRIORITY_MAX 1000000
#define POLICY_DEFAULT_PRIORITY 100 /* when neither the API nor the document says */

#define POLICY_PATH_MAX 96
#define POLICY_PROBLEM_MAX 256
#define POLICY_MESSAGE_MAX 400

/* Which optional fields a rule has (bits of policy_rule.has). */
enum {
	POLICY_RULE_CAPABILITY = 1u << 0,
	POLICY_RULE_MAX_BUDGET = 1u << 1,
	POLICY_RULE_MIN_TRUST = 1u << 2,
	POLICY_RULE_HITL = 1u << 3,
	POLICY_RULE_HITL_TIMEOUT = 1u << 4,
	POLICY_RULE_ALLOWLIST = 1u << 5,
	POLICY_RULE_CIRCUIT = 1u << 6,
};

struct policy_rule {
	char capability[POLICY_CAPABILITY_MAX + 1]; /* "*" matches any */
	unsigned has;                               /* POLICY_RULE_* */
	int64_t max_budget_micros;                  /* when has MAX_BUDGET */
	double min_trust_score;                     /* when has MIN_TRUST, in [0, 1] */
	int hitl_required;                          /* 0 unless `true` */
	int64_t hitl_timeout_seconds;               /* 0: none (the seed assumes no default) */
	char **caller_allowlist;                    /* sorted, distinct; owned */
	size_t n_allowlist;
	int64_t cb_max_failures;                    /* when has CIRCUIT */
	int64_t cb_window_seconds;
	int line, col;                              /* where the rule starts */
};

struct policy_org {
	int64_t monthly_budget_micros;
	int has_alert_threshold;
	double alert_threshold; /* fraction of the monthly budget, in [0, 1] */
	int line, col;
};

struct policy_doc {
	struct policy_rule *rules; /* owned */
	size_t n_rules;
	int has_org;
	struct policy_org org;
	int has_priority; /* the document's own `priority:`, if any */
	int64_t priority;
	int has_enabled;  /* the document's own `enabled:`, if any */
	int enabled;
};

struct policy_err {
	int line, col;                   /* 1-based; 0 when not about a place */
	char path[POLICY_PATH_MAX];      /* "rules[0].min_trust_score", "" at the top */
	char problem[POLICY_PROBLEM_MAX];
	char message[POLICY_MESSAGE_MAX]; /* "line:col: path: problem", what users see */
};

/*
 * Reads len bytes of YAML (need not be NUL-terminated; borrowed). On
 * success *out is a new document the caller frees with policy_doc_free.
 * Returns 0; E(VALIDATION) with err filled when the text is not a valid
 * policy (nothing in *out); E(INTERNAL) when memory ran out.
 */
int policy_parse(const char *yaml, size_t len, struct policy_doc **out, struct policy_err *err);

/* Frees doc and everything it owns. Accepts NULL. */
void policy_doc_free(struct policy_doc *doc);

/*
 * Effective priority and enabled flag of an uploaded policy. The API's
 * field wins when given (api_priority / api_enabled non-NULL), because
 * PATCH changes it later without a new version; else the document's own
 * key; else POLICY_DEFAULT_PRIORITY and enabled. doc is borrowed.
 */
void policy_doc_meta(const struct policy_doc *doc, const int64_t *api_priority,
		     const int *api_enabled, int64_t *priority, int *enabled);

/* 1 when s is a valid capability ("*" or 1..64 of [a-z0-9_.:-], first a
 * letter or digit); len bytes, NULs count as invalid. */
int policy_capability_valid(const char *s, size_t len);

/* 1 when s is a valid agent id (1..128 of [A-Za-z0-9._:-], first a letter
 * or digit; the registry's rule). */
int policy_agent_id_valid(const char *s, size_t len);

#endif
