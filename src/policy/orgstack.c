/* Loading an org's compiled policy stack; see orgstack.h. */
#include "policy/orgstack.h"

#include <stdio.h>
#include <string.h>

#include "core/err.h"
#include "core/banned.h"

struct load_ctx {
	struct policy_stack *stack;
	char *msg;
	size_t msgsz;
};

static int add_one(void *ctx, const struct policy *p)
{
	struct load_ctx *c = ctx;
	struct policy_doc *doc = NULL;
	struct policy_err err;
	struct policy_meta meta = {
		.policy_id = p->policy_id,
		.version = p->version,
		.priority = p->priority,
		.enabled = p->enabled,
		.created = p->seq,
		.name = p->name,
	};
	int rc = policy_parse(p->yaml ? p->yaml : "", p->yaml ? strlen(p->yaml) : 0, &doc, &err);

	if (rc) {
		snprintf(c->msg, c->msgsz, "stored policy %s v%d no longer parses: %s",
			 p->policy_id, p->version, err.message);
		return E(INTERNAL);
	}
	rc = policy_stack_add(c->stack, &meta, doc); /* takes doc */
	if (rc)
		snprintf(c->msg, c->msgsz, "adding policy %s to the stack failed", p->policy_id);
	return rc;
}

int policy_orgstack_load(struct store *st, const char *org_id, struct policy_stack **out,
			 char *msg, size_t msgsz)
{
	return policy_orgstack_load_with(st, org_id, NULL, NULL, out, msg, msgsz);
}

int policy_orgstack_load_with(struct store *st, const char *org_id,
			      const struct policy_meta *extra_meta, struct policy_doc *extra_doc,
			      struct policy_stack **out, char *msg, size_t msgsz)
{
	struct load_ctx c = {.msg = msg, .msgsz = msgsz};
	int rc;

	*out = NULL;
	msg[0] = '\0';
	rc = policy_stack_new(&c.stack);
	if (rc) {
		policy_doc_free(extra_doc);
		return rc;
	}
	rc = st->ops->policy_stack(st, org_id, add_one, &c);
	if (extra_doc) {
		if (!rc)
			rc = policy_stack_add(c.stack, extra_meta, extra_doc); /* takes doc */
		else
			policy_doc_free(extra_doc);
	}
	if (!rc)
		rc = policy_stack_compile(c.stack);
	if (rc) {
		if (!msg[0])
			snprintf(msg, msgsz, "loading the policy stack failed: %s",
				 store_last_error());
		policy_stack_free(c.stack);
		return rc;
	}
	*out = c.stack;
	return 0;
}
