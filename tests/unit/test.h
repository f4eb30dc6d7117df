/*
 * A tiny in-tree unit test runner (after libuv's test/task.h): tests
 * register themselves with TEST(name), assertions print both sides, and the
 * runner ends with the line "N passed, N failed" that CI reads.
 *
 * Usage: build/unit [substring]   runs the tests whose name contains it.
 */
#ifndef NEXRA_TEST_H
#define NEXRA_TEST_H

#include <stdio.h>
#include <string.h>

typedef void (*test_fn)(void);
void test_register(const char *name, test_fn fn);
extern int test_failed_now;

#define TEST(name)                                                                   \
	static void test_##name(void);                                               \
	__attribute__((constructor)) static void reg_##name(void)                    \
	{                                                                             \
		test_register(#name, test_##name);                                   \
	}                                                                             \
	static void test_##name(void)

#define FAIL_AT(...)                                                                 \
	do {                                                                          \
		fprintf(stderr, "  %s:%d: ", __FILE__, __LINE__);                    \
		fprintf(stderr, __VA_ARGS__);                                        \
		fprintf(stderr, "\n");                                               \
		test_failed_now = 1;                                                 \
		return;                                                              \
	} while (0)

#define ASSERT(c)                                                                    \
	do {                                                                          \
		if (!(c))                                                            \
			FAIL_AT("ASSERT(%s)", #c);                                   \
	} while (0)

#define ASSERT_EQ(a, b)                                                              \
	do {                                                                          \
		long long a_ = (long long)(a), b_ = (long long)(b);                  \
		if (a_ != b_)                                                        \
			FAIL_AT("ASSERT_EQ(%s, %s): %lld != %lld", #a, #b, a_, b_);  \
	} while (0)

#define ASSERT_STR_EQ(a, b)                                                          \
	do {                                                                          \
		const char *a_ = (a), *b_ = (b);                                     \
		if (!a_ || !b_ || strcmp(a_, b_))                                    \
			FAIL_AT("ASSERT_STR_EQ(%s, %s): \"%s\" != \"%s\"", #a, #b,   \
				a_ ? a_ : "(null)", b_ ? b_ : "(null)");             \
	} while (0)

#define ASSERT_CONTAINS(hay, needle)                                                 \
	do {                                                                          \
		const char *h_ = (hay), *n_ = (needle);                              \
		if (!h_ || !strstr(h_, n_))                                          \
			FAIL_AT("ASSERT_CONTAINS(%s, %s): \"%s\" lacks \"%s\"", #hay, \
				#needle, h_ ? h_ : "(null)", n_);                    \
	} while (0)

#endif
