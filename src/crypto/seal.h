/*
 * Secrets at rest (webhook secrets, later agent and OAuth tokens): sealed
 * with libsodium's XChaCha20-Poly1305 under the server's master key, with a
 * random 24-byte nonce per value and associated data naming what the value
 * belongs to (e.g. "agent:org_x/agent-y"), so a sealed value copied onto
 * another row fails to open. Sealed form: nonce || ciphertext || tag.
 *
 * The master key is 32 bytes, given as 64 hex chars in NEXRA_MASTER_KEY or
 * read from a file (--master-key-file); the file is created (mode 0600)
 * with a fresh key on first start when neither exists.
 */
#ifndef NEXRA_CRYPTO_SEAL_H
#define NEXRA_CRYPTO_SEAL_H

#include <stddef.h>

#define SEAL_KEY_LEN 32

int seal_global_init(void); /* sodium_init; 0 or E(INTERNAL) */

/* Load (or create) the master key. env_hex may be NULL. On failure writes a
 * message for the operator into msg. *created is set when a file was made. */
int seal_master_key(const char *env_hex, const char *file, unsigned char key[SEAL_KEY_LEN],
		    int *created, char *msg, size_t msgsz);

/* Seal n bytes; *out (malloc'd, caller frees) and *outlen. */
int seal(const unsigned char key[SEAL_KEY_LEN], const void *pt, size_t n, const char *ad,
	 unsigned char **out, size_t *outlen);

/* Open a sealed value; *out (malloc'd, NUL-terminated, caller frees).
 * E(INTERNAL) if it does not authenticate. */
int unseal(const unsigned char key[SEAL_KEY_LEN], const unsigned char *in, size_t n,
	   const char *ad, char **out, size_t *outlen);

#endif
