/*
 * core/buf: a growable buffer with a hard maximum. Past the maximum an
 * append fails with E(TOO_LARGE) and leaves the contents as they were.
 */
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/err.h"
#include "test.h"

TEST(buf_max_enforced_contents_unchanged)
{
	struct buf b;

	buf_init(&b, 10);
	ASSERT_EQ(buf_adds(&b, "hello"), 0);
	ASSERT_EQ(buf_adds(&b, "world!"), E(TOO_LARGE)); /* 11 > 10 */
	ASSERT_EQ(b.len, 5);
	ASSERT_STR_EQ(b.data, "hello");
	ASSERT_EQ(buf_addf(&b, "%s", "123456"), E(TOO_LARGE));
	ASSERT_EQ(b.len, 5);
	ASSERT_STR_EQ(b.data, "hello");
	ASSERT_EQ(buf_adds(&b, "12345"), 0); /* exactly at the maximum */
	ASSERT_EQ(b.len, 10);
	ASSERT_STR_EQ(b.data, "hello12345");
	ASSERT_EQ(buf_add(&b, "x", 1), E(TOO_LARGE));
	ASSERT_EQ(buf_add(&b, "", 0), 0);
	ASSERT_STR_EQ(b.data, "hello12345");
	ASSERT(b.cap <= b.max + 1);
	buf_release(&b);
	ASSERT(b.data == NULL);
	ASSERT_EQ(b.len, 0);
}

TEST(buf_grows_and_stays_terminated)
{
	struct buf b;
	char chunk[100];

	memset(chunk, 'x', sizeof(chunk));
	buf_init(&b, 1 << 20);
	for (int i = 0; i < 1000; i++) {
		ASSERT_EQ(buf_add(&b, chunk, sizeof(chunk)), 0);
		ASSERT_EQ(b.data[b.len], '\0');
	}
	ASSERT_EQ(b.len, 100000);
	ASSERT_EQ(buf_addf(&b, "%d-%s", 42, "end"), 0);
	ASSERT_STR_EQ(b.data + 100000, "42-end");
	buf_reset(&b);
	ASSERT_EQ(b.len, 0);
	ASSERT_STR_EQ(b.data, "");
	ASSERT_EQ(buf_adds(&b, "again"), 0);
	ASSERT_STR_EQ(b.data, "again");
	buf_release(&b);
}

TEST(buf_zero_max)
{
	struct buf b;

	buf_init(&b, 0);
	ASSERT_EQ(buf_add(&b, "", 0), 0);
	ASSERT_STR_EQ(b.data, "");
	ASSERT_EQ(buf_add(&b, "a", 1), E(TOO_LARGE));
	buf_release(&b);
}

TEST(buf_detach)
{
	struct buf b;
	size_t n = 99;
	char *p;

	buf_init(&b, 100);
	p = buf_detach(&b, &n); /* nothing added: a fresh "" */
	ASSERT(p);
	ASSERT_STR_EQ(p, "");
	ASSERT_EQ(n, 0);
	free(p);

	ASSERT_EQ(buf_addf(&b, "n=%d", 7), 0);
	p = buf_detach(&b, &n);
	ASSERT_STR_EQ(p, "n=7");
	ASSERT_EQ(n, 3);
	ASSERT(b.data == NULL);
	ASSERT_EQ(b.len, 0);
	ASSERT_EQ(b.cap, 0);
	ASSERT_EQ(b.max, 100); /* still usable, same limit */
	ASSERT_EQ(buf_adds(&b, "next"), 0);
	ASSERT_STR_EQ(b.data, "next");
	ASSERT(p != b.data);
	free(p);
	buf_release(&b);
}

/* Regression: a length so large that len + n would wrap around is refused
 * (the bound is checked as n > max - len). Run in a child so a crash is a
 * failure, not the end of the run. */
TEST(buf_add_length_overflow_refused)
{
	pid_t pid = fork();
	int st = 0;

	ASSERT(pid >= 0);
	if (pid == 0) {
		struct buf b;
		static const char src[16] = "0123456789";

		buf_init(&b, 64);
		if (buf_add(&b, src, 10))
			_exit(3);
		_exit(buf_add(&b, src, SIZE_MAX - 5) == E(TOO_LARGE) && b.len == 10 ? 0 : 4);
	}
	ASSERT(waitpid(pid, &st, 0) == pid);
	if (!WIFEXITED(st))
		FAIL_AT("buf_add(SIZE_MAX - 5) after 10 bytes crashed (signal %d)",
			WIFSIGNALED(st) ? WTERMSIG(st) : 0);
	ASSERT_EQ(WEXITSTATUS(st), 0);
}

TEST(buf_reserve_is_a_hint_within_max)
{
	struct buf b;
	char *before;

	buf_init(&b, 1000);
	ASSERT_EQ(buf_adds(&b, "abc"), 0);
	ASSERT_EQ(buf_reserve(&b, 500), 0);
	ASSERT(b.cap >= 501);
	ASSERT_EQ(b.len, 3);
	ASSERT_STR_EQ(b.data, "abc");
	before = b.data;
	for (int i = 0; i < 49; i++)
		ASSERT_EQ(buf_adds(&b, "0123456789"), 0); /* 493 bytes: no regrowth */
	ASSERT(b.data == before);
	/* more than the maximum is clamped to it, not refused */
	ASSERT_EQ(buf_reserve(&b, 1u << 30), 0);
	ASSERT(b.cap <= b.max + 1);
	ASSERT_EQ(b.len, 493);
	{
		static const char big[600];

		ASSERT_EQ(buf_add(&b, big, 1000 - 493 + 1), E(TOO_LARGE));
		ASSERT_EQ(buf_add(&b, big, 1000 - 493), 0);
		ASSERT_EQ(b.len, 1000);
	}
	buf_release(&b);
}
