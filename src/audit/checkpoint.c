/* Signed checkpoints; see checkpoint.h and docs/audit.md. */
#include "audit/checkpoint.h"

#include <jansson.h>
#include <openssl/sha.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "core/timefmt.h"
#include "core/banned.h"

#define SIG_B64_MAX 96

int checkpoint_message(const struct checkpoint *c, char *out, size_t outsz)
{
	char root[2 * MERKLE_HASH_LEN + 1], ts[RFC3339_LEN];
	int n;

	hex_encode(c->root, MERKLE_HASH_LEN, root);
	time_rfc3339(c->timestamp, ts);
	n = snprintf(out, outsz, "nexra-audit-checkpoint/v1\n%s\n%llu\n%s\n%s\n", c->org_id,
		     (unsigned long long)c->tree_size, root, ts);
	return n < 0 || (size_t)n >= outsz ? -1 : n;
}

void checkpoint_sign(struct checkpoint *c, const unsigned char sk[CHECKPOINT_SK_LEN])
{
	char msg[CHECKPOINT_MSG_MAX];
	int n = checkpoint_message(c, msg, sizeof(msg));

	if (n < 0) {
		memset(c->sig, 0, sizeof(c->sig)); /* cannot happen: ids are short */
		return;
	}
	crypto_sign_detached(c->sig, NULL, (const unsigned char *)msg, (size_t)n, sk);
}

int checkpoint_verify(const struct checkpoint *c, const unsigned char pk[CHECKPOINT_PK_LEN])
{
	char msg[CHECKPOINT_MSG_MAX];
	int n = checkpoint_message(c, msg, sizeof(msg));

	return n >= 0 &&
	       !crypto_sign_verify_detached(c->sig, (const unsigned char *)msg, (size_t)n, pk);
}

void checkpoint_key_id(const unsigned char pk[CHECKPOINT_PK_LEN], char out[CHECKPOINT_KEY_ID_LEN])
{
	unsigned char h[32];

	SHA256(pk, CHECKPOINT_PK_LEN, h);
	hex_encode(h, 8, out);
}

void checkpoint_pk_b64(const unsigned char pk[CHECKPOINT_PK_LEN], char *out)
{
	sodium_bin2base64(out, CHECKPOINT_PK_B64_MAX, pk, CHECKPOINT_PK_LEN,
			  sodium_base64_VARIANT_ORIGINAL);
}

int checkpoint_pk_parse(const char *s, unsigned char pk[CHECKPOINT_PK_LEN])
{
	size_t len = 0, n = strlen(s);
	const char *end = NULL;

	if (!hex_decode(s, pk, CHECKPOINT_PK_LEN))
		return 0;
	if (!sodium_base642bin(pk, CHECKPOINT_PK_LEN, s, n, NULL, &len, &end,
			       sodium_base64_VARIANT_ORIGINAL) &&
	    len == CHECKPOINT_PK_LEN && end == s + n)
		return 0;
	if (!sodium_base642bin(pk, CHECKPOINT_PK_LEN, s, n, NULL, &len, &end,
			       sodium_base64_VARIANT_ORIGINAL_NO_PADDING) &&
	    len == CHECKPOINT_PK_LEN && end == s + n)
		return 0;
	return -1;
}

void checkpoint_write(struct jsonw *jw, const struct checkpoint *c,
		      const unsigned char pk[CHECKPOINT_PK_LEN])
{
	char root[2 * MERKLE_HASH_LEN + 1], kid[CHECKPOINT_KEY_ID_LEN], sig[SIG_B64_MAX];

	hex_encode(c->root, MERKLE_HASH_LEN, root);
	checkpoint_key_id(pk, kid);
	sodium_bin2base64(sig, sizeof(sig), c->sig, sizeof(c->sig), sodium_base64_VARIANT_ORIGINAL);
	jw_obj_open(jw);
	jw_kstr(jw, "org_id", c->org_id);
	jw_kint(jw, "tree_size", (int64_t)c->tree_size);
	jw_kstr(jw, "root_hash", root);
	jw_ktime(jw, "timestamp", c->timestamp);
	jw_kstr(jw, "key_id", kid);
	jw_kstr(jw, "signature", sig);
	jw_obj_close(jw);
}

static int fail(char *err, size_t errsz, const char *what)
{
	snprintf(err, errsz, "checkpoint: %s", what);
	return -1;
}

int checkpoint_parse(const char *json, size_t len, struct checkpoint *c, char *err,
		     size_t errsz)
{
	json_t *o = json_loadb(json, len, JSON_REJECT_DUPLICATES, NULL);
	const char *org, *root, *ts, *sig;
	json_t *size;
	size_t siglen = 0;
	const char *end = NULL;
	char again[RFC3339_LEN];
	int rc = -1;

	memset(c, 0, sizeof(*c));
	if (!json_is_object(o)) {
		rc = fail(err, errsz, "not a JSON object");
		goto out;
	}
	org = json_string_value(json_object_get(o, "org_id"));
	root = json_string_value(json_object_get(o, "root_hash"));
	ts = json_string_value(json_object_get(o, "timestamp"));
	sig = json_string_value(json_object_get(o, "signature"));
	size = json_object_get(o, "tree_size");
	if (!org || !root || !ts || !sig || !json_is_integer(size)) {
		rc = fail(err, errsz, "org_id, tree_size, root_hash, timestamp and signature are required");
		goto out;
	}
	if (strlen(org) >= sizeof(c->org_id) || json_integer_value(size) < 0) {
		rc = fail(err, errsz, "bad org_id or tree_size");
		goto out;
	}
	snprintf(c->org_id, sizeof(c->org_id), "%s", org);
	c->tree_size = (uint64_t)json_integer_value(size);
	if (hex_decode(root, c->root, MERKLE_HASH_LEN)) {
		rc = fail(err, errsz, "root_hash is not 64 lowercase hex characters");
		goto out;
	}
	if (time_parse_rfc3339(ts, &c->timestamp)) {
		rc = fail(err, errsz, "timestamp is not RFC 3339");
		goto out;
	}
	time_rfc3339(c->timestamp, again);
	if (strcmp(again, ts)) {
		rc = fail(err, errsz, "timestamp is not in the form 2026-03-16T14:22:38Z");
		goto out;
	}
	if (sodium_base642bin(c->sig, sizeof(c->sig), sig, strlen(sig), NULL, &siglen, &end,
			      sodium_base64_VARIANT_ORIGINAL) ||
	    siglen != sizeof(c->sig) || end != sig + strlen(sig)) {
		rc = fail(err, errsz, "signature is not 64 bytes of base64");
		goto out;
	}
	rc = 0;
out:
	json_decref(o);
	return rc;
}
