/*
 * The verifiable audit log as a service over the store (docs/audit.md):
 * bringing an org's Merkle tree up to date with its audit_log, proofs and
 * roots from the stored subtree hashes, signed checkpoints, and the
 * server's signing key.
 *
 * The ledger appends entries (store.h LEDGER_SETTLE); the tree follows
 * them: the background appender (audit/appender.h) and every checkpoint or
 * proof request call audit_catch_up, which hashes what is new in batches
 * under the org's tree lock. A checkpoint therefore always covers every
 * entry committed before it was asked for.
 */
#ifndef NEXRA_AUDIT_LOG_H
#define NEXRA_AUDIT_LOG_H

#include <stdint.h>

#include "audit/checkpoint.h"
#include "audit/merkle.h"
#include "store/store.h"

#define AUDIT_BATCH 2000 /* entries per appender transaction */
#define AUDIT_SIGNING_KEY "audit-checkpoint-ed25519"

struct audit_signer {
	int ready; /* 0: the key could not be read or opened (audit signing answers 503) */
	unsigned char pk[CHECKPOINT_PK_LEN];
	unsigned char sk[CHECKPOINT_SK_LEN];
};

/* The server's checkpoint key: read from the database and unsealed with
 * the master key, or made, sealed and stored on first use (the first of
 * several servers to store it wins; the others read it). */
int audit_signer_load(struct store *s, const unsigned char master_key[32], int64_t now,
		      struct audit_signer *out, char *msg, size_t msgsz);

/* Append every pending entry of org to its tree; *size is the tree size
 * after (may be NULL). */
int audit_catch_up(struct store *s, const char *org_id, int64_t now, int64_t *size);

/* Root of the org's tree at size n (n <= its size). */
int audit_root(struct store *s, const char *org_id, uint64_t n, merkle_hash out);
/* The stored leaf hash of leaf index m. */
int audit_leaf(struct store *s, const char *org_id, uint64_t m, merkle_hash out);
int audit_inclusion(struct store *s, const char *org_id, uint64_t m, uint64_t n,
		    merkle_hash proof[MERKLE_MAX_PROOF], int *len);
int audit_consistency(struct store *s, const char *org_id, uint64_t m, uint64_t n,
		      merkle_hash proof[MERKLE_MAX_PROOF], int *len);
/* The frontier hashes of the tree at size n, highest first (*count). */
int audit_frontier(struct store *s, const char *org_id, uint64_t n,
		   merkle_hash out[MERKLE_MAX_LEVELS], int *count);

/* A checkpoint of org at size n (<= its tree size), signed at now. */
int audit_checkpoint(struct store *s, const struct audit_signer *k, const char *org_id,
		     uint64_t n, int64_t now, struct checkpoint *out);

#endif
