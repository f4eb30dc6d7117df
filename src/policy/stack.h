/*
 * The policy stack: every policy of an org, ordered and compiled so that a
 * delegation is decided in constant time, with the reason attached.
 *
 * Semantics (docs/policies.md has them with examples):
 *
 * - Enabled policies form a stack ordered by priority, lower first; equal
 *   priorities by creation order (the `created` the caller gives, then the
 *   order of policy_stack_add). Disabled policies take no part at all,
 *   not even their organization block.
 * - Reading the stack top to bottom, policy by policy and rule by rule,
 *   the first rule whose capability equals the request's, or is "*",
 *   decides. No such rule: block (default-deny). No enabled policy: block.
 * - The deciding rule's constraints are all checked, and every one that
 *   fails is reported: budget_cap over max_budget_usd, callee trust under
 *   min_trust_score, caller not in caller_allowlist, callee circuit open.
 *   Any failure: block. None, and hitl_required: pending_approval.
 *   Otherwise allow.
 * - The organization block in effect is the first one in stack order.
 *
 * Compilation walks the stack once in order and keeps, for each
 * capability, the first rule naming it, in a hash table, plus the first
 * "*" rule. A rule is the answer for capability c when it is the earlier
 * (in stack order) of the table's entry for c and the first "*": a "*"
 * rule earlier in the stack wins over a specific rule later, and nothing
 * after the first "*" is ever indexed. So a decision is one hash of the
 * capability and one or two probes, whatever the number of rules.
 *
 * The stack owns the documents given to it. It is immutable once compiled
 * and may then be read by many threads at once (policy_decide takes it
 * const and writes only *out).
 */
#ifndef NEXRA_POLICY_STACK_H
#define NEXRA_POLICY_STACK_H

#include <stddef.h>
#include <stdint.h>

#include "core/jsonw.h"
#include "policy/policy.h"

#define POLICY_STACK_MAX_POLICIES 4096
#define POLICY_ID_MAX 64

/* A policy's identity and place in the stack (policy_doc_meta resolves
 * priority and enabled from the API fields and the document). */
struct policy_meta {
	const char *policy_id; /* copied; at most POLICY_ID_MAX - 1 bytes */
	int64_t version;
	int64_t priority; /* lower first */
	int enabled;
	int64_t created;  /* tie-break among equal priorities: lower first */
	const char *name; /* copied; the policy's name (NULL: use the id) */
};

struct policy_stack;

enum policy_verdict {
	POLICY_ALLOW,
	POLICY_BLOCK,
	POLICY_PENDING_APPROVAL,
};

/* Why this verdict: a rule decided, or there was none to decide. */
enum policy_basis {
	POLICY_BASIS_RULE,
	POLICY_BASIS_DEFAULT_DENY, /* enabled policies, but no rule matches */
	POLICY_BASIS_NO_POLICY,    /* no enabled policy at all */
};

/* Constraints of a rule (bits of policy_decision.failed / .unchecked). */
enum policy_check {
	POLICY_CHECK_BUDGET = 1u << 0,  /* budget_cap_micros > max_budget_micros */
	POLICY_CHECK_TRUST = 1u << 1,   /* callee_trust_score < min_trust_score */
	POLICY_CHECK_CALLER = 1u << 2,  /* caller_agent_id not in caller_allowlist */
	POLICY_CHECK_CIRCUIT = 1u << 3, /* the callee's circuit is open */
};
#define POLICY_NCHECKS 4

/*
 * One delegation to decide. Strings are borrowed for the call.
 * callee_agent_id NULL means "no particular callee" (a dry run by
 * capability): then trust and circuit cannot be checked and are reported
 * in decision.unchecked instead.
 */
struct policy_request {
	const char *caller_agent_id; /* NULL or "": fails any caller_allowlist */
	const char *callee_agent_id;
	const char *capability;      /* required */
	int64_t budget_cap_micros;
	double callee_trust_score;   /* in [0, 1]; NaN fails min_trust_score */
	int callee_circuit_open;     /* state kept by the caller (callee paused) */
	/* Optional: the callee's recent failure times (Unix s). When given and
	 * the deciding rule has a circuit_breaker, the circuit also counts as
	 * open when policy_circuit_open() says so at now. */
	const int64_t *failure_times;
	size_t n_failure_times;
	int64_t now; /* Unix seconds */
};

struct policy_decision {
	enum policy_verdict verdict;
	enum policy_basis basis;
	/* The deciding rule (basis RULE); pointers borrow from the stack. */
	const char *policy_id;
	const char *policy_name;     /* the policy's name: the audit log's policy_ref */
	int64_t policy_version;
	size_t rule_index;           /* in its policy's `rules` list */
	const char *rule_capability; /* as written: "*" or the capability */
	const struct policy_rule *rule;
	int64_t hitl_timeout_seconds; /* 0: none */
	/* Every failed constraint, and the numbers involved. */
	unsigned failed;    /* POLICY_CHECK_* */
	unsigned unchecked; /* constraints the request could not feed */
	int64_t budget_cap_micros, max_budget_micros;
	double trust_score, min_trust_score;
	const char *caller_agent_id; /* borrowed from the request */
	int64_t cb_max_failures, cb_window_seconds, cb_failures_in_window;
};

/* A new empty stack into *out (free with policy_stack_free). 0 or E(INTERNAL). */
int policy_stack_new(struct policy_stack **out);
void policy_stack_free(struct policy_stack *s);

/*
 * Adds a policy. Consumes doc (freed by the stack, also on failure). The
 * stack must not be compiled yet. 0; E(VALIDATION) when meta is invalid
 * (no id, id too long) or the stack is full; E(INTERNAL) on memory.
 */
int policy_stack_add(struct policy_stack *s, const struct policy_meta *meta,
		     struct policy_doc *doc);

/* Orders and indexes the stack; after it, no more adds. 0 or E(INTERNAL). */
int policy_stack_compile(struct policy_stack *s);

/*
 * Decides req with the compiled stack s. Pure: reads s and req, writes
 * only *out. 0; E(VALIDATION) when req has no capability; E(INTERNAL) when
 * s is not compiled.
 */
int policy_decide(const struct policy_stack *s, const struct policy_request *req,
		  struct policy_decision *out);

/* Rules in enabled policies, and enabled policies (after compile). */
size_t policy_stack_rules(const struct policy_stack *s);
size_t policy_stack_enabled(const struct policy_stack *s);

/* The organization block in effect: the first in stack order among
 * enabled policies, or NULL. policy_id/version (may be NULL) tell whose. */
const struct policy_org *policy_stack_org(const struct policy_stack *s, const char **policy_id,
					  int64_t *version);

/*
 * Circuit breaker, pure: the circuit is open at now when at least
 * max_failures of the times lie in the window (now - window_seconds, now].
 * Times need not be sorted; times after now are ignored. Returns 1 open,
 * 0 closed; *in_window (may be NULL) gets the count.
 */
int policy_circuit_open(int64_t max_failures, int64_t window_seconds, const int64_t *times,
			size_t n, int64_t now, int64_t *in_window);

/* "allow", "block", "pending_approval". */
const char *policy_verdict_name(enum policy_verdict v);
/* "rule", "default_deny", "no_enabled_policy". */
const char *policy_basis_name(enum policy_basis b);
/* "budget", "trust", "caller_allowlist", "circuit" (one bit). */
const char *policy_check_name(enum policy_check c);

/*
 * One line a person can read: "allow by pol_x v3 rules[0] (research)",
 * "block by ...: budget_cap_usd 0.75 over max_budget_usd 0.5; ...",
 * "block: no rule matches capability x (default-deny)". Truncated to sz.
 */
void policy_decision_explain(const struct policy_decision *d, char *buf, size_t sz);

/*
 * The decision as a JSON object (the delegation's policy_result and the
 * dry-run answer): {"decision", "reason", "policy_id", "policy_version",
 * "rule_index", "rule_capability", "hitl_timeout_seconds",
 * "policy_ref", "failed_constraints": [{"constraint": ..., numbers...}], "unchecked": [...],
 * "message"}. Errors are jw's (sticky).
 */
void policy_decision_write(struct jsonw *jw, const struct policy_decision *d);

#endif
