/*
 * RFC 9162 Merkle trees, pure: hashing, an append-only frontier, and
 * inclusion and consistency proofs computed from and checked against
 * stored subtree hashes (docs/audit.md).
 *
 *   leaf hash  = SHA-256(0x00 || entry bytes)
 *   node hash  = SHA-256(0x01 || left || right)
 *   MTH({})    = SHA-256("")
 *
 * Storage model: a tree of size n is kept as the hashes of its complete
 * ("perfect") aligned subtrees: node (level, index) is the root of leaves
 * [index << level, (index + 1) << level). Level 0 holds the leaf hashes.
 * Appending leaf n completes exactly the nodes whose range ends at n + 1,
 * which merkle_frontier_append hands to the caller to store. Every subtree
 * hash a proof needs is either such a node or a combination of O(log n) of
 * them, so proofs need O(log^2 n) node reads and no leaf scan.
 *
 * Proof generation reads nodes through a callback (merkle_get_fn); the
 * caller can first run it with a recording callback to learn which nodes
 * are needed (merkle_needed) and fetch them in one go.
 */
#ifndef NEXRA_AUDIT_MERKLE_H
#define NEXRA_AUDIT_MERKLE_H

#include <stddef.h>
#include <stdint.h>

#define MERKLE_HASH_LEN 32
#define MERKLE_MAX_LEVELS 64
#define MERKLE_MAX_PROOF (2 * MERKLE_MAX_LEVELS) /* hashes in any proof */

typedef unsigned char merkle_hash[MERKLE_HASH_LEN];

void merkle_leaf(const void *entry, size_t n, merkle_hash out);
void merkle_node(const merkle_hash left, const merkle_hash right, merkle_hash out);
void merkle_empty(merkle_hash out); /* MTH of the empty tree */
/* The leaf hashes of n entries at once (out[i] = merkle_leaf(entries[i])):
 * several messages share the SIMD lanes of the CPU where it has them. */
void merkle_leaves(const unsigned char *const *entries, const size_t *lens, size_t n,
		   merkle_hash *out);

/* The right edge of a tree: size and one perfect subtree root per set bit
 * of size (h[level] valid where bit level of size is 1). */
struct merkle_frontier {
	uint64_t size;
	merkle_hash h[MERKLE_MAX_LEVELS];
};

/* Called for every node an append completes, leaf first, then upward. */
typedef int (*merkle_emit_fn)(void *ctx, int level, uint64_t index, const merkle_hash h);

void merkle_frontier_init(struct merkle_frontier *f);
/* Append one leaf hash; emit (may be NULL) receives each completed node.
 * Returns emit's first non-zero result (the append is then done anyway). */
int merkle_frontier_append(struct merkle_frontier *f, const merkle_hash leaf,
			   merkle_emit_fn emit, void *ctx);
/* Append n <= MERKLE_BATCH leaf hashes (as many merkle_frontier_append
 * calls without emit), hashing each level's new nodes together; leaves and
 * work (n hashes) are overwritten. -1 when n is too large. */
#define MERKLE_BATCH 256
int merkle_frontier_append_many(struct merkle_frontier *f, merkle_hash *leaves, size_t n,
				merkle_hash *work);
/* The root of the tree the frontier describes. */
void merkle_frontier_root(const struct merkle_frontier *f, merkle_hash out);
/* The nodes a frontier of size n is made of, highest level first:
 * levels[i], indexes[i] for i < *count. */
void merkle_frontier_nodes(uint64_t n, int levels[MERKLE_MAX_LEVELS],
			   uint64_t indexes[MERKLE_MAX_LEVELS], int *count);

/* Reads the stored node (level, index) into out: 0, or an error that the
 * proof functions pass back. */
typedef int (*merkle_get_fn)(void *ctx, int level, uint64_t index, merkle_hash out);

/* MTH of leaves [lo, hi) for ranges that RFC 9162's recursion produces
 * (lo a multiple of every power of two <= hi - lo). */
int merkle_range_root(merkle_get_fn get, void *ctx, uint64_t lo, uint64_t hi, merkle_hash out);
/* Root of the tree of size n (n >= 0). */
int merkle_root(merkle_get_fn get, void *ctx, uint64_t n, merkle_hash out);

/* Inclusion proof of leaf index m (0-based) in the tree of size n (m < n):
 * the audit path, leaf side first. E(VALIDATION) when m >= n. */
int merkle_inclusion_proof(merkle_get_fn get, void *ctx, uint64_t m, uint64_t n,
			   merkle_hash proof[MERKLE_MAX_PROOF], int *len);
/* Consistency proof between sizes m and n (0 < m <= n). Empty when m == n.
 * E(VALIDATION) when m is 0 or above n. */
int merkle_consistency_proof(merkle_get_fn get, void *ctx, uint64_t m, uint64_t n,
			     merkle_hash proof[MERKLE_MAX_PROOF], int *len);

/* RFC 9162 section 2.1.3.2: 1 when proof shows leaf at index m in the tree
 * of size n with root, else 0. */
int merkle_inclusion_verify(uint64_t m, uint64_t n, const merkle_hash leaf,
			    const merkle_hash *proof, int len, const merkle_hash root);
/* RFC 9162 section 2.1.4.2: 1 when proof shows the tree (m, root_m) is a
 * prefix of (n, root_n), else 0. */
int merkle_consistency_verify(uint64_t m, uint64_t n, const merkle_hash root_m,
			      const merkle_hash root_n, const merkle_hash *proof, int len);

#endif
