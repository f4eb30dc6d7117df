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
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#endif

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

/* ---- many hashes at once -------------------------------------------------- */

/*
 * SHA-256(prefix || msg[i]) for many independent messages: eight at a time
 * in the eight 32-bit lanes of AVX2 registers, one message per lane, where
 * the CPU has AVX2 (a CPU without the SHA extensions spends about 7 cycles
 * a byte on one message; eight lanes share the instructions). The rest,
 * and every CPU without AVX2, go through the one-message path above. The
 * lanes are checked once against it before they are first used
 * (lanes_ok); on any difference the one-message path is used throughout.
 */
static void hash_one(unsigned char prefix, const unsigned char *msg, size_t n, merkle_hash out)
{
	SHA256_CTX c;

	SHA256_Init(&c);
	SHA256_Update(&c, &prefix, 1);
	SHA256_Update(&c, msg, n);
	SHA256_Final(out, &c);
}

#if defined(__x86_64__) && defined(__GNUC__)
#define LANES 8

static const uint32_t sha_k[64] = {
	0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
	0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
	0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
	0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
	0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
	0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
	0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
	0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
	0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
	0xc67178f2};
static const uint32_t sha_iv[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
				   0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};

#define ROR(x, n) _mm256_or_si256(_mm256_srli_epi32(x, n), _mm256_slli_epi32(x, 32 - (n)))
#define XOR3(a, b, c) _mm256_xor_si256(_mm256_xor_si256(a, b), c)
#define ADD(a, b) _mm256_add_epi32(a, b)

/* Rows of 8 words (one block half per lane) into columns (one word per lane). */
__attribute__((target("avx2"))) static void transpose8(__m256i r[8])
{
	__m256i a[8], b[8];

	for (int i = 0; i < 8; i += 2) {
		a[i] = _mm256_unpacklo_epi32(r[i], r[i + 1]);
		a[i + 1] = _mm256_unpackhi_epi32(r[i], r[i + 1]);
	}
	for (int i = 0; i < 8; i += 4) {
		b[i] = _mm256_unpacklo_epi64(a[i], a[i + 2]);
		b[i + 1] = _mm256_unpackhi_epi64(a[i], a[i + 2]);
		b[i + 2] = _mm256_unpacklo_epi64(a[i + 1], a[i + 3]);
		b[i + 3] = _mm256_unpackhi_epi64(a[i + 1], a[i + 3]);
	}
	for (int i = 0; i < 4; i++) {
		r[i] = _mm256_permute2x128_si256(b[i], b[i + 4], 0x20);
		r[i + 4] = _mm256_permute2x128_si256(b[i], b[i + 4], 0x31);
	}
}

/* One 64-byte block per lane into the lanes' states. */
__attribute__((target("avx2"))) static void compress8(__m256i st[8],
						       const unsigned char *blk[LANES])
{
	const __m256i bswap = _mm256_setr_epi8(3, 2, 1, 0, 7, 6, 5, 4, 11, 10, 9, 8, 15, 14, 13,
					       12, 3, 2, 1, 0, 7, 6, 5, 4, 11, 10, 9, 8, 15, 14,
					       13, 12);
	__m256i w[16], lo[8], hi[8], a, b, c, d, e, f, g, h, t1, t2;

	for (int l = 0; l < LANES; l++) {
		lo[l] = _mm256_shuffle_epi8(_mm256_loadu_si256((const __m256i *)blk[l]), bswap);
		hi[l] = _mm256_shuffle_epi8(_mm256_loadu_si256((const __m256i *)(blk[l] + 32)),
					    bswap);
	}
	transpose8(lo);
	transpose8(hi);
	for (int j = 0; j < 8; j++) {
		w[j] = lo[j];
		w[j + 8] = hi[j];
	}
	a = st[0], b = st[1], c = st[2], d = st[3], e = st[4], f = st[5], g = st[6], h = st[7];
	for (int t = 0; t < 64; t++) {
		__m256i wt;

		if (t < 16) {
			wt = w[t];
		} else {
			__m256i w15 = w[(t - 15) & 15], w2 = w[(t - 2) & 15];
			__m256i s0 = XOR3(ROR(w15, 7), ROR(w15, 18), _mm256_srli_epi32(w15, 3));
			__m256i s1 = XOR3(ROR(w2, 17), ROR(w2, 19), _mm256_srli_epi32(w2, 10));

			wt = w[t & 15] = ADD(ADD(w[t & 15], s0), ADD(w[(t - 7) & 15], s1));
		}
		t1 = ADD(ADD(h, XOR3(ROR(e, 6), ROR(e, 11), ROR(e, 25))),
			 ADD(_mm256_xor_si256(_mm256_and_si256(e, f), _mm256_andnot_si256(e, g)),
			     ADD(_mm256_set1_epi32((int)sha_k[t]), wt)));
		t2 = ADD(XOR3(ROR(a, 2), ROR(a, 13), ROR(a, 22)),
			 _mm256_or_si256(_mm256_and_si256(a, b),
					 _mm256_and_si256(c, _mm256_or_si256(a, b))));
		h = g, g = f, f = e, e = ADD(d, t1), d = c, c = b, b = a, a = ADD(t1, t2);
	}
	st[0] = ADD(st[0], a), st[1] = ADD(st[1], b), st[2] = ADD(st[2], c);
	st[3] = ADD(st[3], d), st[4] = ADD(st[4], e), st[5] = ADD(st[5], f);
	st[6] = ADD(st[6], g), st[7] = ADD(st[7], h);
}

/* A lane's message (prefix || msg, padded) block by block: the blocks fully
 * inside msg are read where they are, the first and the last one or two
 * are built here. */
struct lane {
	const unsigned char *msg;
	size_t full;   /* blocks entirely inside prefix || msg */
	size_t blocks; /* all blocks, padding included */
	unsigned char first[64], last[128];
};

static void lane_init(struct lane *l, unsigned char prefix, const unsigned char *msg, size_t n)
{
	uint64_t bits = (uint64_t)(n + 1) * 8;
	size_t from, rest;

	l->msg = msg;
	l->full = (n + 1) / 64;
	l->blocks = (n + 1 + 8) / 64 + 1;
	if (l->full) {
		l->first[0] = prefix;
		memcpy(l->first + 1, msg, 63);
	}
	memset(l->last, 0, sizeof(l->last));
	from = l->full * 64; /* offset in prefix || msg */
	rest = n + 1 - from;
	if (from == 0) {
		l->last[0] = prefix;
		if (n)
			memcpy(l->last + 1, msg, n);
	} else if (rest) {
		memcpy(l->last, msg + from - 1, rest);
	}
	l->last[rest] = 0x80;
	for (int i = 0; i < 8; i++)
		l->last[(l->blocks - l->full) * 64 - 1 - i] = (unsigned char)(bits >> (8 * i));
}

static const unsigned char *lane_block(const struct lane *l, size_t k)
{
	if (k >= l->full)
		return l->last + (k - l->full) * 64;
	return k ? l->msg + k * 64 - 1 : l->first;
}

__attribute__((target("avx2"))) static void hash8(unsigned char prefix,
						   const unsigned char *const *msg,
						   const size_t *len, merkle_hash *out)
{
	static const unsigned char idle[64];
	struct lane ln[LANES];
	const unsigned char *blk[LANES];
	uint32_t words[8][LANES];
	__m256i st[8];
	size_t most = 0;

	for (int l = 0; l < LANES; l++) {
		lane_init(&ln[l], prefix, msg[l], len[l]);
		if (ln[l].blocks > most)
			most = ln[l].blocks;
	}
	for (int j = 0; j < 8; j++)
		st[j] = _mm256_set1_epi32((int)sha_iv[j]);
	for (size_t k = 0; k < most; k++) {
		int done = 0;

		for (int l = 0; l < LANES; l++)
			blk[l] = k < ln[l].blocks ? lane_block(&ln[l], k) : idle;
		compress8(st, blk);
		for (int l = 0; l < LANES; l++)
			done |= ln[l].blocks == k + 1;
		if (!done)
			continue;
		for (int j = 0; j < 8; j++)
			_mm256_storeu_si256((__m256i *)words[j], st[j]);
		for (int l = 0; l < LANES; l++) {
			if (ln[l].blocks != k + 1)
				continue;
			for (int j = 0; j < 8; j++) {
				out[l][4 * j] = (unsigned char)(words[j][l] >> 24);
				out[l][4 * j + 1] = (unsigned char)(words[j][l] >> 16);
				out[l][4 * j + 2] = (unsigned char)(words[j][l] >> 8);
				out[l][4 * j + 3] = (unsigned char)words[j][l];
			}
		}
	}
}

/* 1 when the lanes agree with the one-message path on messages of every
 * length that changes the block layout (checked once). */
static int lanes_ok(void)
{
	static int known = -1; /* -1 until checked, then 0 or 1 */
	int ok = __atomic_load_n(&known, __ATOMIC_RELAXED);
	unsigned char m[200];
	const unsigned char *p[LANES];
	size_t len[LANES];
	merkle_hash got[LANES], want;

	if (ok >= 0)
		return ok;
	ok = __builtin_cpu_supports("avx2") ? 1 : 0;
	for (size_t i = 0; i < sizeof(m); i++)
		m[i] = (unsigned char)(i * 131 + 7);
	for (size_t base = 0; ok && base < 140; base += LANES) {
		for (int l = 0; l < LANES; l++) {
			p[l] = m + l;
			len[l] = base + (size_t)l;
		}
		hash8(0, p, len, got);
		for (int l = 0; l < LANES && ok; l++) {
			hash_one(0, p[l], len[l], want);
			ok = !memcmp(got[l], want, MERKLE_HASH_LEN);
		}
	}
	__atomic_store_n(&known, ok, __ATOMIC_RELAXED);
	return ok;
}

static void hash_many(unsigned char prefix, const unsigned char *const *msg, const size_t *len,
		      size_t n, merkle_hash *out)
{
	size_t i = 0;

	if (n >= LANES / 2 && lanes_ok()) {
		for (; i + LANES <= n; i += LANES)
			hash8(prefix, msg + i, len + i, out + i);
		if (n - i >= LANES / 2) { /* the rest, padded with repeats of the last */
			const unsigned char *pm[LANES];
			size_t pl[LANES];
			merkle_hash po[LANES];

			for (int l = 0; l < LANES; l++) {
				size_t j = i + (size_t)l < n ? i + (size_t)l : n - 1;

				pm[l] = msg[j];
				pl[l] = len[j];
			}
			hash8(prefix, pm, pl, po);
			memcpy(out + i, po, (n - i) * MERKLE_HASH_LEN);
			i = n;
		}
	}
	for (; i < n; i++)
		hash_one(prefix, msg[i], len[i], out[i]);
}
#else
static void hash_many(unsigned char prefix, const unsigned char *const *msg, const size_t *len,
		      size_t n, merkle_hash *out)
{
	for (size_t i = 0; i < n; i++)
		hash_one(prefix, msg[i], len[i], out[i]);
}
#endif

void merkle_leaves(const unsigned char *const *entries, const size_t *lens, size_t n,
		   merkle_hash *out)
{
	hash_many(0, entries, lens, n, out);
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
		hash_many(1, pair, len, k, up);
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
