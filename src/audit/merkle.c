/*
 * RFC 9162 Merkle trees over stored perfect subtrees; see merkle.h.
 *
 * Proofs follow the RFC's recursive definitions (PATH and SUBPROOF,
 * section 2.1.3.1 and 2.1.4.1) in absolute leaf coordinates: the recursion
 * descends from the root collecting one sibling subtree hash per level,
 * and the proof is that list read bottom-up. Verification is the RFC's
 * iterative algorithms (sections 2.1.3.2 and 2.1.4.2) verbatim; the unit
 * test checks both against a naive recursive model for every size 1..64.
 *
 * Hashing uses OpenSSL's SHA256_Init/Update/Final directly: deprecated in
 * OpenSSL 3 in favour of EVP, whose one-shot path fetches the algorithm on
 * every call and made verification several times slower (a leaf and a
 * node hash per entry is all the work there is). The low-level calls use
 * the same assembly; the deprecation is silenced for this file only.
 */
#define OPENSSL_SUPPRESS_DEPRECATED
#include "audit/merkle.h"

#include <openssl/sha.h>
#include <string.h>

#include "audit/sha256x8.h"
#include "core/err.h"
#include "core/banned.h"

void merkle_leaf(const void *entry, size_t n, merkle_hash out)
{
	static const unsigned char zero = 0;
	SHA256_CTX c;

	SHA256_Init(&c);
	SHA256_Update(&c, &zero, 1);
	SHA256_Update(&c, entry, n);
	SHA256_Final(out, &c);
}

void merkle_node(const merkle_hash left, const merkle_hash right, merkle_hash out)
{
	static const unsigned char one = 1;
	SHA256_CTX c;

	SHA256_Init(&c);
	SHA256_Update(&c, &one, 1);
	SHA256_Update(&c, left, MERKLE_HASH_LEN);
	SHA256_Update(&c, right, MERKLE_HASH_LEN);
	SHA256_Final(out, &c);
}

void merkle_empty(merkle_hash out)
{
	SHA256_CTX c;

	SHA256_Init(&c);
	SHA256_Final(out, &c);
}

void merkle_leaves(const unsigned char *const *entries, const size_t *lens, size_t n,
		   merkle_hash *out)
{
	sha256x8_many(0, entries, lens, n, out);
}

/* ---- frontier ------------------------------------------------------------- */

void merkle_frontier_init(struct merkle_frontier *f)
{
	memset(f, 0, sizeof(*f));
}

int merkle_frontier_append(struct merkle_frontier *f, const merkle_hash leaf,
			   merkle_emit_fn emit, void *ctx)
{
	merkle_hash carry;
	uint64_t index = f->size;
	int level = 0, rc = 0;

	memcpy(carry, leaf, MERKLE_HASH_LEN);
	if (emit)
		rc = emit(ctx, 0, index, carry);
	while (level < MERKLE_MAX_LEVELS - 1 && (f->size >> level) & 1) {
		merkle_node(f->h[level], carry, carry);
		index >>= 1;
		level++;
		if (emit && !rc)
			rc = emit(ctx, level, index, carry);
	}
	memcpy(f->h[level], carry, MERKLE_HASH_LEN);
	f->size++;
	return rc;
}

int merkle_frontier_append_many(struct merkle_frontier *f, merkle_hash *leaves, size_t n,
				merkle_hash *work)
{
	merkle_hash *cur = leaves, *up = work, *t;
	const unsigned char *pair[MERKLE_BATCH];
	size_t len[MERKLE_BATCH];
	unsigned char joined[64];
	uint64_t size = f->size, added = n;

	if (n > MERKLE_BATCH)
		return -1;
	/* level by level: the new nodes of a level are indexes [size >> level,
	 * (size + n) >> level); an odd first one pairs with the frontier's */
	for (int level = 0; n && level < MERKLE_MAX_LEVELS - 1; level++) {
		size_t i = 0, k = 0;

		if ((size >> level) & 1) {
			memcpy(joined, f->h[level], MERKLE_HASH_LEN);
			memcpy(joined + MERKLE_HASH_LEN, cur[0], MERKLE_HASH_LEN);
			pair[k] = joined;
			len[k++] = 2 * MERKLE_HASH_LEN;
			i = 1;
		}
		for (; i + 1 < n; i += 2) {
			pair[k] = cur[i]; /* cur[i] and cur[i + 1] are adjacent */
			len[k++] = 2 * MERKLE_HASH_LEN;
		}
		if (i < n)
			memcpy(f->h[level], cur[i], MERKLE_HASH_LEN);
		sha256x8_many(1, pair, len, k, up);
		t = cur, cur = up, up = t;
		n = k;
	}
	if (n) /* only past 2^63 leaves */
		memcpy(f->h[MERKLE_MAX_LEVELS - 1], cur[0], MERKLE_HASH_LEN);
	f->size = size + added;
	return 0;
}

void merkle_frontier_root(const struct merkle_frontier *f, merkle_hash out)
{
	int have = 0;

	for (int l = 0; l < MERKLE_MAX_LEVELS; l++) {
		if (!((f->size >> l) & 1))
			continue;
		if (have) {
			merkle_node(f->h[l], out, out);
		} else {
			memcpy(out, f->h[l], MERKLE_HASH_LEN);
			have = 1;
		}
	}
	if (!have)
		merkle_empty(out);
}

void merkle_frontier_nodes(uint64_t n, int levels[MERKLE_MAX_LEVELS],
			   uint64_t indexes[MERKLE_MAX_LEVELS], int *count)
{
	*count = 0;
	for (int l = MERKLE_MAX_LEVELS - 1; l >= 0; l--) {
		if (!((n >> l) & 1))
			continue;
		levels[*count] = l;
		indexes[*count] = (n >> l) - 1;
		(*count)++;
	}
}

/* ---- subtree hashes ------------------------------------------------------- */

static int is_pow2(uint64_t n)
{
	return n && !(n & (n - 1));
}

static int log2u(uint64_t n) /* n a power of two */
{
	return __builtin_ctzll(n);
}

/* The largest power of two below n (n >= 2). */
static uint64_t split(uint64_t n)
{
	return (uint64_t)1 << (63 - __builtin_clzll(n - 1));
}

int merkle_range_root(merkle_get_fn get, void *ctx, uint64_t lo, uint64_t hi, merkle_hash out)
{
	merkle_hash left;
	uint64_t n = hi - lo, k;
	int rc;

	if (hi <= lo) {
		merkle_empty(out);
		return 0;
	}
	if (is_pow2(n))
		return get(ctx, log2u(n), lo >> log2u(n), out);
	k = split(n);
	rc = get(ctx, log2u(k), lo >> log2u(k), left);
	if (!rc)
		rc = merkle_range_root(get, ctx, lo + k, hi, out);
	if (!rc)
		merkle_node(left, out, out);
	return rc;
}

int merkle_root(merkle_get_fn get, void *ctx, uint64_t n, merkle_hash out)
{
	return merkle_range_root(get, ctx, 0, n, out);
}

/* The list collected top-down, turned into the RFC's bottom-up order. */
static void reverse(merkle_hash *p, int len)
{
	merkle_hash t;

	for (int i = 0, j = len - 1; i < j; i++, j--) {
		memcpy(t, p[i], MERKLE_HASH_LEN);
		memcpy(p[i], p[j], MERKLE_HASH_LEN);
		memcpy(p[j], t, MERKLE_HASH_LEN);
	}
}

int merkle_inclusion_proof(merkle_get_fn get, void *ctx, uint64_t m, uint64_t n,
			   merkle_hash proof[MERKLE_MAX_PROOF], int *len)
{
	uint64_t lo = 0, hi = n, k;
	int rc = 0;

	*len = 0;
	if (m >= n)
		return E(VALIDATION);
	while (hi - lo > 1 && !rc) {
		k = split(hi - lo);
		if (m < lo + k) {
			rc = merkle_range_root(get, ctx, lo + k, hi, proof[(*len)++]);
			hi = lo + k;
		} else {
			rc = merkle_range_root(get, ctx, lo, lo + k, proof[(*len)++]);
			lo += k;
		}
	}
	reverse(proof, *len);
	return rc;
}

int merkle_consistency_proof(merkle_get_fn get, void *ctx, uint64_t m, uint64_t n,
			     merkle_hash proof[MERKLE_MAX_PROOF], int *len)
{
	uint64_t lo = 0, hi = n, k;
	int whole = 1, rc = 0; /* whole: SUBPROOF's b, m is the old tree itself */

	*len = 0;
	if (m == 0 || m > n)
		return E(VALIDATION);
	while (!rc) {
		if (m == hi - lo) {
			if (!whole)
				rc = merkle_range_root(get, ctx, lo, hi, proof[(*len)++]);
			break;
		}
		k = split(hi - lo);
		if (m <= k) {
			rc = merkle_range_root(get, ctx, lo + k, hi, proof[(*len)++]);
			hi = lo + k;
		} else {
			rc = merkle_range_root(get, ctx, lo, lo + k, proof[(*len)++]);
			lo += k;
			m -= k;
			whole = 0;
		}
	}
	reverse(proof, *len);
	return rc;
}

/* ---- verification --------------------------------------------------------- */

int merkle_inclusion_verify(uint64_t m, uint64_t n, const merkle_hash leaf,
			    const merkle_hash *proof, int len, const merkle_hash root)
{
	uint64_t fn = m, sn;
	merkle_hash r;

	if (m >= n || len < 0)
		return 0;
	sn = n - 1;
	memcpy(r, leaf, MERKLE_HASH_LEN);
	for (int i = 0; i < len; i++) {
		if (sn == 0)
			return 0;
		if ((fn & 1) || fn == sn) {
			merkle_node(proof[i], r, r);
			while (!(fn & 1) && fn != 0) {
				fn >>= 1;
				sn >>= 1;
			}
		} else {
			merkle_node(r, proof[i], r);
		}
		fn >>= 1;
		sn >>= 1;
	}
	return sn == 0 && !memcmp(r, root, MERKLE_HASH_LEN);
}

int merkle_consistency_verify(uint64_t m, uint64_t n, const merkle_hash root_m,
			      const merkle_hash root_n, const merkle_hash *proof, int len)
{
	const merkle_hash *p = proof;
	merkle_hash fr, sr;
	uint64_t fn, sn;
	int i = 0;

	if (m == 0 || m > n || len < 0)
		return 0;
	if (m == n)
		return len == 0 && !memcmp(root_m, root_n, MERKLE_HASH_LEN);
	if (len == 0)
		return 0;
	fn = m - 1;
	sn = n - 1;
	while (fn & 1) {
		fn >>= 1;
		sn >>= 1;
	}
	if (is_pow2(m)) { /* the old root is the proof's implicit first value */
		memcpy(fr, root_m, MERKLE_HASH_LEN);
	} else {
		memcpy(fr, p[0], MERKLE_HASH_LEN);
		i = 1;
	}
	memcpy(sr, fr, MERKLE_HASH_LEN);
	for (; i < len; i++) {
		if (sn == 0)
			return 0;
		if ((fn & 1) || fn == sn) {
			merkle_node(p[i], fr, fr);
			merkle_node(p[i], sr, sr);
			while (!(fn & 1) && fn != 0) {
				fn >>= 1;
				sn >>= 1;
			}
		} else {
			merkle_node(sr, p[i], sr);
		}
		fn >>= 1;
		sn >>= 1;
	}
	return sn == 0 && !memcmp(fr, root_m, MERKLE_HASH_LEN) &&
	       !memcmp(sr, root_n, MERKLE_HASH_LEN);
}
