/*
 * Signed checkpoints (docs/audit.md): a statement by the server's Ed25519
 * key that the org's log had tree_size entries with this root at this
 * time. The signed message is the text
 *
 *   "nexra-audit-checkpoint/v1\n" org_id "\n" tree_size "\n"
 *   root_hash (64 lowercase hex) "\n" timestamp (RFC 3339, seconds) "\n"
 *
 * and the JSON form is {"org_id", "tree_size", "root_hash", "timestamp",
 * "key_id", "signature"} with the signature in standard base64 and key_id
 * the first 8 bytes of SHA-256(public key) in hex. Pure: no I/O, the time
 * is given.
 */
#ifndef NEXRA_AUDIT_CHECKPOINT_H
#define NEXRA_AUDIT_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "audit/merkle.h"
#include "core/jsonw.h"
#include "core/rand.h"

#define CHECKPOINT_SIG_LEN 64
#define CHECKPOINT_PK_LEN 32
#define CHECKPOINT_SK_LEN 64
#define CHECKPOINT_KEY_ID_LEN 17 /* 16 hex + NUL */
#define CHECKPOINT_MSG_MAX 256
#define CHECKPOINT_PK_B64_MAX 48  /* base64 of a public key + NUL */

struct checkpoint {
	char org_id[ID_MAX];
	uint64_t tree_size;
	merkle_hash root;
	int64_t timestamp; /* unix seconds */
	unsigned char sig[CHECKPOINT_SIG_LEN];
};

/* The signed message of c into out; its length, or -1 when it does not fit. */
int checkpoint_message(const struct checkpoint *c, char *out, size_t outsz);
void checkpoint_sign(struct checkpoint *c, const unsigned char sk[CHECKPOINT_SK_LEN]);
/* 1 when c's signature is pk's over c's message. */
int checkpoint_verify(const struct checkpoint *c, const unsigned char pk[CHECKPOINT_PK_LEN]);
void checkpoint_key_id(const unsigned char pk[CHECKPOINT_PK_LEN], char out[CHECKPOINT_KEY_ID_LEN]);
/* The public key as standard base64 into out (>= CHECKPOINT_PK_B64_MAX). */
void checkpoint_pk_b64(const unsigned char pk[CHECKPOINT_PK_LEN], char *out);
/* Parse a public key from base64 (padded or not) or 64 hex; 0 or -1. */
int checkpoint_pk_parse(const char *s, unsigned char pk[CHECKPOINT_PK_LEN]);

/* The JSON object of c (pk gives key_id). */
void checkpoint_write(struct jsonw *jw, const struct checkpoint *c,
		      const unsigned char pk[CHECKPOINT_PK_LEN]);
/* Parse the JSON object text (len bytes) into c; 0, or -1 with a reason in
 * err. Every field is required and must be in canonical form. */
int checkpoint_parse(const char *json, size_t len, struct checkpoint *c, char *err,
		     size_t errsz);


#endif
