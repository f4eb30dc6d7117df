/*
 * The audit log service; see log.h.
 *
 * Proofs read stored nodes in two passes: the proof is first computed
 * with a reader that only records which (level, index) nodes it asks for
 * (the shape of a proof does not depend on the hashes), those are fetched
 * with one store call, and the proof is computed again from them. That is
 * one query per proof on PostgreSQL instead of one per node.
 */
#include "audit/log.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "crypto/seal.h"
#include "core/banned.h"

#define REFS_MAX 8192 /* nodes any proof of a 2^64 tree can need */

/* ---- the signing key ------------------------------------------------------ */

int audit_signer_load(struct store *s, const unsigned char master_key[32], int64_t now,
		      struct audit_signer *out, char *msg, size_t msgsz)
{
	unsigned char *sealed = NULL, pk[CHECKPOINT_PK_LEN], sk[CHECKPOINT_SK_LEN];
	char *plain = NULL;
	size_t len = 0, plen = 0;
	int rc = s->ops->server_key_get(s, AUDIT_SIGNING_KEY, &sealed, &len);

	if (rc == E(NOT_FOUND)) {
		crypto_sign_keypair(pk, sk);
		rc = seal(master_key, sk, sizeof(sk), AUDIT_SIGNING_KEY, &sealed, &len);
		sodium_memzero(sk, sizeof(sk));
		if (!rc)
			rc = s->ops->server_key_add(s, AUDIT_SIGNING_KEY, sealed, len, now);
		free(sealed);
		sealed = NULL;
		if (!rc || rc == E(CONFLICT)) /* made by us, or by another server first */
			rc = s->ops->server_key_get(s, AUDIT_SIGNING_KEY, &sealed, &len);
	}
	if (rc) {
		snprintf(msg, msgsz, "cannot read or store the audit signing key: %s",
			 store_last_error());
		goto out;
	}
	rc = unseal(master_key, sealed, len, AUDIT_SIGNING_KEY, &plain, &plen);
	if (rc || plen != CHECKPOINT_SK_LEN) {
		snprintf(msg, msgsz, "the audit signing key in the database does not open with "
				     "this master key (a different master key than the one it was "
				     "made with?)");
		rc = E(INTERNAL);
		goto out;
	}
	memcpy(out->sk, plain, CHECKPOINT_SK_LEN);
	crypto_sign_ed25519_sk_to_pk(out->pk, out->sk);
	out->ready = 1;
out:
	if (plain)
		sodium_memzero(plain, plen);
	free(plain);
	free(sealed);
	return rc;
}

/* ---- the tree ------------------------------------------------------------- */

int audit_catch_up(struct store *s, const char *org_id, int64_t now, int64_t *size)
{
	int64_t n = 0;
	int appended = 0, rc;

	do {
		rc = s->ops->audit_extend(s, org_id, AUDIT_BATCH, now, &n, &appended);
	} while (!rc && appended == AUDIT_BATCH);
	if (size)
		*size = n;
	return rc;
}

struct refs {
	int n;
	int level[REFS_MAX];
	uint64_t idx[REFS_MAX];
	unsigned char hash[REFS_MAX][32];
	int overflow;
};

static int find(const struct refs *r, int level, uint64_t index)
{
	for (int i = 0; i < r->n; i++)
		if (r->level[i] == level && r->idx[i] == index)
			return i;
	return -1;
}

static int record(void *ctx, int level, uint64_t index, merkle_hash out)
{
	struct refs *r = ctx;

	memset(out, 0, MERKLE_HASH_LEN);
	if (find(r, level, index) >= 0)
		return 0;
	if (r->n == REFS_MAX) {
		r->overflow = 1;
		return 0;
	}
	r->level[r->n] = level;
	r->idx[r->n] = index;
	r->n++;
	return 0;
}

static int lookup(void *ctx, int level, uint64_t index, merkle_hash out)
{
	struct refs *r = ctx;
	int i = find(r, level, index);

	if (i < 0)
		return E(INTERNAL);
	memcpy(out, r->hash[i], MERKLE_HASH_LEN);
	return 0;
}

enum what { W_ROOT, W_INCLUSION, W_CONSISTENCY };

static int compute(enum what w, merkle_get_fn get, void *ctx, uint64_t m, uint64_t n,
		   merkle_hash *out, int *len)
{
	if (w == W_ROOT) {
		*len = 1;
		return merkle_root(get, ctx, n, out[0]);
	}
	if (w == W_INCLUSION)
		return merkle_inclusion_proof(get, ctx, m, n, out, len);
	return merkle_consistency_proof(get, ctx, m, n, out, len);
}

static int two_pass(struct store *s, const char *org_id, enum what w, uint64_t m, uint64_t n,
		    merkle_hash *out, int *len)
{
	struct refs *r = calloc(1, sizeof(*r));
	int rc;

	if (!r)
		return E(INTERNAL);
	rc = compute(w, record, r, m, n, out, len);
	if (!rc && r->overflow)
		rc = E(INTERNAL);
	if (!rc)
		rc = s->ops->audit_nodes(s, org_id, (size_t)r->n, r->level, r->idx, r->hash);
	if (!rc)
		rc = compute(w, lookup, r, m, n, out, len);
	free(r);
	return rc;
}

int audit_root(struct store *s, const char *org_id, uint64_t n, merkle_hash out)
{
	int len;

	return two_pass(s, org_id, W_ROOT, 0, n, (merkle_hash *)out, &len);
}

int audit_leaf(struct store *s, const char *org_id, uint64_t m, merkle_hash out)
{
	int level = 0;
	unsigned char h[1][32];
	int rc = s->ops->audit_nodes(s, org_id, 1, &level, &m, h);

	if (!rc)
		memcpy(out, h[0], MERKLE_HASH_LEN);
	return rc;
}

int audit_inclusion(struct store *s, const char *org_id, uint64_t m, uint64_t n,
		    merkle_hash proof[MERKLE_MAX_PROOF], int *len)
{
	return two_pass(s, org_id, W_INCLUSION, m, n, proof, len);
}

int audit_consistency(struct store *s, const char *org_id, uint64_t m, uint64_t n,
		      merkle_hash proof[MERKLE_MAX_PROOF], int *len)
{
	return two_pass(s, org_id, W_CONSISTENCY, m, n, proof, len);
}

int audit_frontier(struct store *s, const char *org_id, uint64_t n,
		   merkle_hash out[MERKLE_MAX_LEVELS], int *count)
{
	int levels[MERKLE_MAX_LEVELS];
	uint64_t idx[MERKLE_MAX_LEVELS];

	merkle_frontier_nodes(n, levels, idx, count);
	return s->ops->audit_nodes(s, org_id, (size_t)*count, levels, idx, out);
}

int audit_checkpoint(struct store *s, const struct audit_signer *k, const char *org_id,
		     uint64_t n, int64_t now, struct checkpoint *out)
{
	int rc;

	memset(out, 0, sizeof(*out));
	snprintf(out->org_id, sizeof(out->org_id), "%s", org_id);
	out->tree_size = n;
	out->timestamp = now;
	rc = audit_root(s, org_id, n, out->root);
	if (!rc)
		checkpoint_sign(out, k->sk);
	return rc;
}
