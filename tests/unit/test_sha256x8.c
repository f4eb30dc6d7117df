/*
 * audit/sha256x8 and the batch paths built on it: the eight-lane hashes
 * equal OpenSSL's one-message hashes for every length across the block
 * boundaries and every batch size (full groups of eight, padded tails,
 * the one-message rest), and merkle_frontier_append_many builds the same
 * frontier as merkle_frontier_append one leaf at a time.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "audit/merkle.h"
#include "audit/sha256x8.h"
#include "test.h"

/* A known answer: SHA-256("abc") (FIPS 180-2, B.1), through both paths
 * with the first byte as the prefix. */
TEST(sha256x8_known_answer)
{
	static const unsigned char want[32] = {
		0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40,
		0xde, 0x5d, 0xae, 0x22, 0x23, 0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17,
		0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad};
	const unsigned char *msg[9];
	size_t len[9];
	unsigned char out[9][32], one[32];

	for (int i = 0; i < 9; i++) {
		msg[i] = (const unsigned char *)"bc";
		len[i] = 2;
	}
	sha256x8_one('a', msg[0], 2, one);
	ASSERT(!memcmp(one, want, 32));
	sha256x8_many('a', msg, len, 9, out);
	for (int i = 0; i < 9; i++)
		ASSERT(!memcmp(out[i], want, 32));
}

TEST(sha256x8_equals_one_at_a_time)
{
	enum { N = 37, MAXLEN = 300 };
	unsigned char buf[MAXLEN + N];
	const unsigned char *msg[N];
	size_t len[N];
	unsigned char got[N][32], want[32];

	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (unsigned char)(i * 197 + 11);
	/* every length 0..MAXLEN-1 lands in some lane of some batch */
	for (size_t base = 0; base < MAXLEN; base += 7) {
		for (size_t n = 1; n <= N; n += (n < 10 ? 1 : 9)) {
			for (size_t i = 0; i < n; i++) {
				msg[i] = buf + i;
				len[i] = (base + i * 5) % MAXLEN;
			}
			for (unsigned prefix = 0; prefix < 2; prefix++) {
				sha256x8_many((unsigned char)prefix, msg, len, n, got);
				for (size_t i = 0; i < n; i++) {
					sha256x8_one((unsigned char)prefix, msg[i], len[i], want);
					if (memcmp(got[i], want, 32))
						FAIL_AT("lane %zu of %zu, length %zu, prefix %u differs", i,
							n, len[i], prefix);
				}
			}
		}
	}
}

TEST(merkle_batches_equal_single_appends)
{
	enum { N = 1000 };
	static merkle_hash leaves[N], batch[MERKLE_BATCH], work[MERKLE_BATCH], one;
	static unsigned char entry[N][40];
	const unsigned char *msg[MERKLE_BATCH];
	size_t len[MERKLE_BATCH];
	struct merkle_frontier a, b;
	merkle_hash ra, rb;
	size_t done = 0, step = 1;

	for (int i = 0; i < N; i++) {
		memset(entry[i], 0, sizeof(entry[i]));
		snprintf((char *)entry[i], sizeof(entry[i]), "{\"event_id\":%d}", i + 1);
		merkle_leaf(entry[i], strlen((char *)entry[i]), leaves[i]);
	}
	merkle_frontier_init(&a);
	merkle_frontier_init(&b);
	for (int i = 0; i < N; i++)
		ASSERT_EQ(merkle_frontier_append(&a, leaves[i], NULL, NULL), 0);
	/* batches of growing, uneven sizes up to the limit */
	while (done < N) {
		size_t n = step < N - done ? step : N - done;

		if (n > MERKLE_BATCH)
			n = MERKLE_BATCH;
		for (size_t i = 0; i < n; i++) {
			msg[i] = entry[done + i];
			len[i] = strlen((const char *)entry[done + i]);
		}
		merkle_leaves(msg, len, n, batch);
		for (size_t i = 0; i < n; i++) {
			merkle_leaf(msg[i], len[i], one);
			ASSERT(!memcmp(batch[i], one, sizeof(one)));
		}
		ASSERT_EQ(merkle_frontier_append_many(&b, batch, n, work), 0);
		done += n;
		step = step * 3 + 1;
	}
	ASSERT_EQ(a.size, (uint64_t)N);
	ASSERT_EQ(b.size, (uint64_t)N);
	merkle_frontier_root(&a, ra);
	merkle_frontier_root(&b, rb);
	ASSERT(!memcmp(ra, rb, sizeof(ra)));
	ASSERT_EQ(merkle_frontier_append_many(&b, batch, MERKLE_BATCH + 1, work), -1);
}
