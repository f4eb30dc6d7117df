/*
 * RFC 9162 Merkle proofs (src/audit/merkle.c) against a naive model: the
 * RFC's recursive MTH, PATH and SUBPROOF written directly over an array of
 * leaf hashes, for every tree size 1..64 and every index / old size. The
 * stored-node reader is fed from the frontier's emitted nodes, as the
 * store keeps them. Every proof also verifies, and damaged proofs (a
 * flipped byte, one hash missing or extra, a wrong leaf, index or root) do
 * not. (A proof for size n checked as one for size n + 1 can pass the RFC
 * algorithm: the size is bound by the signed checkpoint, not by the path.)
 */
#include <stdlib.h>
#include <string.h>

#include "audit/merkle.h"
#include "test.h"

#define N 64

static merkle_hash leaves[N];
static merkle_hash nodes[8][N]; /* level, index: what the store would hold */

/* ---- the naive model ------------------------------------------------------ */

static uint64_t model_split(uint64_t n)
{
	uint64_t k = 1;

	while (k * 2 < n)
		k *= 2;
	return k;
}

static void model_mth(uint64_t lo, uint64_t hi, merkle_hash out)
{
	merkle_hash l, r;
	uint64_t k;

	if (hi == lo) {
		merkle_empty(out);
		return;
	}
	if (hi - lo == 1) {
		memcpy(out, leaves[lo], 32);
		return;
	}
	k = model_split(hi - lo);
	model_mth(lo, lo + k, l);
	model_mth(lo + k, hi, r);
	merkle_node(l, r, out);
}

static void model_path(uint64_t m, uint64_t lo, uint64_t hi, merkle_hash *out, int *len)
{
	uint64_t k;

	if (hi - lo <= 1)
		return;
	k = model_split(hi - lo);
	if (m < k) {
		model_path(m, lo, lo + k, out, len);
		model_mth(lo + k, hi, out[(*len)++]);
	} else {
		model_path(m - k, lo + k, hi, out, len);
		model_mth(lo, lo + k, out[(*len)++]);
	}
}

static void model_subproof(uint64_t m, uint64_t lo, uint64_t hi, int b, merkle_hash *out,
			   int *len)
{
	uint64_t n = hi - lo, k;

	if (m == n) {
		if (!b)
			model_mth(lo, hi, out[(*len)++]);
		return;
	}
	k = model_split(n);
	if (m <= k) {
		model_subproof(m, lo, lo + k, b, out, len);
		model_mth(lo + k, hi, out[(*len)++]);
	} else {
		model_subproof(m - k, lo + k, hi, 0, out, len);
		model_mth(lo, lo + k, out[(*len)++]);
	}
}

/* ---- the stored nodes ----------------------------------------------------- */

static int emit(void *ctx, int level, uint64_t index, const merkle_hash h)
{
	(void)ctx;
	memcpy(nodes[level][index], h, 32);
	return 0;
}

static int get(void *ctx, int level, uint64_t index, merkle_hash out)
{
	uint64_t size = *(uint64_t *)ctx;

	if (level >= 8 || ((index + 1) << level) > size)
		return -1; /* a node the tree of this size has not completed */
	memcpy(out, nodes[level][index], 32);
	return 0;
}

static void build(void)
{
	struct merkle_frontier f;

	merkle_frontier_init(&f);
	for (int i = 0; i < N; i++) {
		unsigned char entry[8] = {'e', 'n', 't', 'r', 'y', (unsigned char)i, 0, 7};

		merkle_leaf(entry, sizeof(entry), leaves[i]);
		merkle_frontier_append(&f, leaves[i], emit, NULL);
	}
}

TEST(merkle_known_hashes)
{
	/* RFC 6962 / 9162 test vectors: the empty tree and a one-byte leaf. */
	static const unsigned char empty[32] = {
		0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f,
		0xb9, 0x24, 0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b,
		0x78, 0x52, 0xb8, 0x55};
	static const unsigned char leaf_empty[32] = { /* SHA-256(0x00) */
		0x6e, 0x34, 0x0b, 0x9c, 0xff, 0xb3, 0x7a, 0x98, 0x9c, 0xa5, 0x44, 0xe6, 0xbb, 0x78,
		0x0a, 0x2c, 0x78, 0x90, 0x1d, 0x3f, 0xb3, 0x37, 0x38, 0x76, 0x85, 0x11, 0xa3, 0x06,
		0x17, 0xaf, 0xa0, 0x1d};
	merkle_hash h;

	merkle_empty(h);
	ASSERT(!memcmp(h, empty, 32));
	merkle_leaf("", 0, h);
	ASSERT(!memcmp(h, leaf_empty, 32));
}

TEST(merkle_frontier_roots)
{
	struct merkle_frontier f;
	merkle_hash a, b;

	build();
	merkle_frontier_init(&f);
	merkle_frontier_root(&f, a);
	model_mth(0, 0, b);
	ASSERT(!memcmp(a, b, 32));
	for (uint64_t n = 1; n <= N; n++) {
		merkle_frontier_append(&f, leaves[n - 1], NULL, NULL);
		merkle_frontier_root(&f, a);
		model_mth(0, n, b);
		if (memcmp(a, b, 32))
			FAIL_AT("frontier root differs at size %llu", (unsigned long long)n);
		ASSERT_EQ(merkle_root(get, &n, n, a), 0);
		if (memcmp(a, b, 32))
			FAIL_AT("stored root differs at size %llu", (unsigned long long)n);
	}
}

TEST(merkle_frontier_nodes_cover)
{
	int levels[MERKLE_MAX_LEVELS], count;
	uint64_t idx[MERKLE_MAX_LEVELS];

	merkle_frontier_nodes(13, levels, idx, &count); /* 8 + 4 + 1 */
	ASSERT_EQ(count, 3);
	ASSERT_EQ(levels[0], 3);
	ASSERT_EQ(idx[0], 0);
	ASSERT_EQ(levels[1], 2);
	ASSERT_EQ(idx[1], 2);
	ASSERT_EQ(levels[2], 0);
	ASSERT_EQ(idx[2], 12);
}

TEST(merkle_inclusion_vectors)
{
	merkle_hash want[MERKLE_MAX_PROOF], got[MERKLE_MAX_PROOF], root, bad[MERKLE_MAX_PROOF];
	int wl, gl;

	build();
	for (uint64_t n = 1; n <= N; n++) {
		model_mth(0, n, root);
		for (uint64_t m = 0; m < n; m++) {
			wl = 0;
			model_path(m, 0, n, want, &wl);
			ASSERT_EQ(merkle_inclusion_proof(get, &n, m, n, got, &gl), 0);
			ASSERT_EQ(gl, wl);
			ASSERT(!memcmp(got, want, (size_t)wl * 32));
			ASSERT(merkle_inclusion_verify(m, n, leaves[m], got, gl, root));
			/* rejected: another leaf, index, size, a damaged or short proof */
			ASSERT(!merkle_inclusion_verify(m, n, leaves[(m + 1) % N], got, gl, root));
			if (n > 1)
				ASSERT(!merkle_inclusion_verify((m + 1) % n, n, leaves[m], got, gl, root));
			for (int i = 0; i < gl; i++) {
				memcpy(bad, got, sizeof(bad));
				bad[i][i % 32] ^= 1;
				ASSERT(!merkle_inclusion_verify(m, n, leaves[m], bad, gl, root));
			}
			if (gl)
				ASSERT(!merkle_inclusion_verify(m, n, leaves[m], got, gl - 1, root));
			memcpy(got[gl], root, 32);
			ASSERT(!merkle_inclusion_verify(m, n, leaves[m], got, gl + 1, root));
		}
		ASSERT(merkle_inclusion_proof(get, &n, n, n, got, &gl) != 0);
	}
}

TEST(merkle_consistency_vectors)
{
	merkle_hash want[MERKLE_MAX_PROOF], got[MERKLE_MAX_PROOF], bad[MERKLE_MAX_PROOF];
	merkle_hash rm, rn, other;
	int wl, gl;

	build();
	for (uint64_t n = 1; n <= N; n++) {
		model_mth(0, n, rn);
		for (uint64_t m = 1; m <= n; m++) {
			model_mth(0, m, rm);
			wl = 0;
			model_subproof(m, 0, n, 1, want, &wl);
			ASSERT_EQ(merkle_consistency_proof(get, &n, m, n, got, &gl), 0);
			ASSERT_EQ(gl, wl);
			ASSERT(!memcmp(got, want, (size_t)wl * 32));
			ASSERT(merkle_consistency_verify(m, n, rm, rn, got, gl));
			memcpy(other, rm, 32);
			other[0] ^= 0x80;
			ASSERT(!merkle_consistency_verify(m, n, other, rn, got, gl));
			if (m < n) {
				ASSERT(!merkle_consistency_verify(m, n, rm, other, got, gl));
				ASSERT(!merkle_consistency_verify(m, n, rm, rn, got, gl - 1));
				memcpy(got[gl], rn, 32);
				ASSERT(!merkle_consistency_verify(m, n, rm, rn, got, gl + 1));
				for (int i = 0; i < gl; i++) {
					memcpy(bad, got, sizeof(bad));
					bad[i][31 - i % 32] ^= 2;
					ASSERT(!merkle_consistency_verify(m, n, rm, rn, bad, gl));
				}
			}
		}
		ASSERT(merkle_consistency_proof(get, &n, 0, n, got, &gl) != 0);
		ASSERT(merkle_consistency_proof(get, &n, n + 1, n, got, &gl) != 0);
	}
}
