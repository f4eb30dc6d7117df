/* Many SHA-256 hashes at once; see sha256x8.h. OpenSSL's SHA256_* calls
 * are the fastest one-message path here (merkle.c says why). */
#define OPENSSL_SUPPRESS_DEPRECATED
#include "audit/sha256x8.h"

#include <openssl/sha.h>
#include <stdint.h>
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#endif

#include "core/banned.h"

typedef unsigned char hash32[32];

void sha256x8_one(unsigned char prefix, const unsigned char *msg, size_t n, unsigned char out[32])
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
						   const size_t *len, hash32 *out)
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
	hash32 got[LANES], want;

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
			sha256x8_one(0, p[l], len[l], want);
			ok = !memcmp(got[l], want, 32);
		}
	}
	__atomic_store_n(&known, ok, __ATOMIC_RELAXED);
	return ok;
}

void sha256x8_many(unsigned char prefix, const unsigned char *const *msg, const size_t *len,
		   size_t n, hash32 *out)
{
	size_t i = 0;

	if (n >= LANES / 2 && lanes_ok()) {
		for (; i + LANES <= n; i += LANES)
			hash8(prefix, msg + i, len + i, out + i);
		if (n - i >= LANES / 2) { /* the rest, padded with repeats of the last */
			const unsigned char *pm[LANES];
			size_t pl[LANES];
			hash32 po[LANES];

			for (int l = 0; l < LANES; l++) {
				size_t j = i + (size_t)l < n ? i + (size_t)l : n - 1;

				pm[l] = msg[j];
				pl[l] = len[j];
			}
			hash8(prefix, pm, pl, po);
			memcpy(out + i, po, (n - i) * 32);
			i = n;
		}
	}
	for (; i < n; i++)
		sha256x8_one(prefix, msg[i], len[i], out[i]);
}
#else
void sha256x8_many(unsigned char prefix, const unsigned char *const *msg, const size_t *len,
		   size_t n, hash32 *out)
{
	for (size_t i = 0; i < n; i++)
		sha256x8_one(prefix, msg[i], len[i], out[i]);
}
#endif

