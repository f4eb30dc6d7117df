/*
 * crypto/seal: sealed secrets open only with the same key and associated
 * data, and the master key file is created once, private, and read back.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/err.h"
#include "crypto/seal.h"
#include "test.h"

static void key_of(unsigned char k[SEAL_KEY_LEN], unsigned char fill)
{
	for (int i = 0; i < SEAL_KEY_LEN; i++)
		k[i] = (unsigned char)(fill + i);
}

TEST(seal_round_trip_and_tamper)
{
	unsigned char k[SEAL_KEY_LEN], k2[SEAL_KEY_LEN], *s = NULL, *s2 = NULL;
	const char *pt = "replace-with-32-char-secret-0123456789";
	size_t n = 0, n2 = 0, outlen = 0;
	char *out = NULL;

	ASSERT_EQ(seal_global_init(), 0);
	key_of(k, 1);
	key_of(k2, 2);
	ASSERT_EQ(seal(k, pt, strlen(pt), "agent:org_1/a", &s, &n), 0);
	ASSERT_EQ(n, 24 + strlen(pt) + 16);
	ASSERT(!memmem(s, n, pt, strlen(pt)));
	ASSERT_EQ(unseal(k, s, n, "agent:org_1/a", &out, &outlen), 0);
	ASSERT_STR_EQ(out, pt);
	ASSERT_EQ(outlen, strlen(pt));
	free(out);
	out = NULL;
	/* the same plaintext seals differently each time (random nonce) */
	ASSERT_EQ(seal(k, pt, strlen(pt), "agent:org_1/a", &s2, &n2), 0);
	ASSERT_EQ(n2, n);
	ASSERT(memcmp(s, s2, n));
	free(s2);
	/* wrong associated data: the value copied onto another row */
	ASSERT_EQ(unseal(k, s, n, "agent:org_1/b", &out, &outlen), E(INTERNAL));
	ASSERT(out == NULL);
	ASSERT_EQ(unseal(k, s, n, "", &out, NULL), E(INTERNAL));
	/* wrong key */
	ASSERT_EQ(unseal(k2, s, n, "agent:org_1/a", &out, &outlen), E(INTERNAL));
	/* every single flipped byte: nonce, ciphertext and tag */
	for (size_t i = 0; i < n; i++) {
		s[i] ^= 0x20;
		if (unseal(k, s, n, "agent:org_1/a", &out, &outlen) != E(INTERNAL)) {
			free(out);
			free(s);
			FAIL_AT("tampered byte %zu accepted", i);
		}
		s[i] ^= 0x20;
	}
	/* truncated */
	for (size_t len = 0; len < n; len += 7)
		ASSERT_EQ(unseal(k, s, len, "agent:org_1/a", &out, &outlen), E(INTERNAL));
	ASSERT_EQ(unseal(k, s, n - 1, "agent:org_1/a", &out, &outlen), E(INTERNAL));
	/* still opens after all that */
	ASSERT_EQ(unseal(k, s, n, "agent:org_1/a", &out, NULL), 0);
	free(out);
	free(s);
	/* an empty secret seals to nonce + tag and opens to "" */
	ASSERT_EQ(seal(k, "", 0, "x", &s, &n), 0);
	ASSERT_EQ(n, 40);
	ASSERT_EQ(unseal(k, s, n, "x", &out, &outlen), 0);
	ASSERT_STR_EQ(out, "");
	ASSERT_EQ(outlen, 0);
	free(out);
	free(s);
}

/* A fresh directory for key files; path gets dir + "/master.key". */
static int tmp_keyfile(char *dir, size_t dirsz, char *path, size_t pathsz)
{
	snprintf(dir, dirsz, "/tmp/nexra-unit-seal-XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	snprintf(path, pathsz, "%s/master.key", dir);
	return 0;
}

static int write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = write(fd, text, strlen(text));
	close(fd);
	return n == (ssize_t)strlen(text) ? 0 : -1;
}

static const char hex64[] = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

TEST(seal_master_key_file_created_0600_and_read_back)
{
	char dir[64], path[96], text[80], msg[256] = "";
	unsigned char k1[SEAL_KEY_LEN], k2[SEAL_KEY_LEN];
	struct stat st;
	int created = -1, fd;
	ssize_t n;

	ASSERT_EQ(seal_global_init(), 0);
	ASSERT_EQ(tmp_keyfile(dir, sizeof(dir), path, sizeof(path)), 0);
	ASSERT_EQ(seal_master_key(NULL, path, k1, &created, msg, sizeof(msg)), 0);
	ASSERT_EQ(created, 1);
	ASSERT_EQ(stat(path, &st), 0);
	ASSERT_EQ(st.st_mode & 0777, 0600);
	fd = open(path, O_RDONLY);
	ASSERT(fd >= 0);
	n = read(fd, text, sizeof(text));
	close(fd);
	ASSERT_EQ(n, 65);
	ASSERT_EQ(text[64], '\n');
	for (int i = 0; i < 64; i++)
		ASSERT(strchr("0123456789abcdef", text[i]));
	/* second start: the same key, nothing created */
	ASSERT_EQ(seal_master_key(NULL, path, k2, &created, msg, sizeof(msg)), 0);
	ASSERT_EQ(created, 0);
	ASSERT(!memcmp(k1, k2, SEAL_KEY_LEN));
	/* an empty env value does not count */
	ASSERT_EQ(seal_master_key("", path, k2, &created, msg, sizeof(msg)), 0);
	ASSERT(!memcmp(k1, k2, SEAL_KEY_LEN));
	/* env hex wins over the file */
	ASSERT_EQ(seal_master_key(hex64, path, k2, &created, msg, sizeof(msg)), 0);
	ASSERT_EQ(created, 0);
	for (int i = 0; i < SEAL_KEY_LEN; i++)
		ASSERT_EQ(k2[i], i);
	unlink(path);
	/* env hex wins: no file is created either */
	ASSERT_EQ(seal_master_key(hex64, path, k2, &created, msg, sizeof(msg)), 0);
	ASSERT(access(path, F_OK) != 0);
	rmdir(dir);
}

TEST(seal_master_key_rejects_malformed)
{
	static const char *const bad_files[] = {
		"",
		"abc\n",
		"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e\n", /* 62 */
		"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f00\n", /* 66 */
		"g00102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n",
		"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\nX",
	};
	static const char *const good_files[] = {
		"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
		"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\r\n",
		"000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F\n",
	};
	char dir[64], path[96], msg[256];
	unsigned char k[SEAL_KEY_LEN];
	int created;

	ASSERT_EQ(seal_global_init(), 0);
	ASSERT_EQ(tmp_keyfile(dir, sizeof(dir), path, sizeof(path)), 0);
	for (size_t i = 0; i < sizeof(bad_files) / sizeof(bad_files[0]); i++) {
		ASSERT_EQ(write_file(path, bad_files[i]), 0);
		msg[0] = '\0';
		if (seal_master_key(NULL, path, k, &created, msg, sizeof(msg)) != E(VALIDATION)) {
			unlink(path);
			rmdir(dir);
			FAIL_AT("malformed key file %zu accepted", i);
		}
		ASSERT_CONTAINS(msg, path);
		ASSERT_CONTAINS(msg, "64 hex");
		ASSERT_EQ(created, 0);
	}
	for (size_t i = 0; i < sizeof(good_files) / sizeof(good_files[0]); i++) {
		ASSERT_EQ(write_file(path, good_files[i]), 0);
		ASSERT_EQ(seal_master_key(NULL, path, k, &created, msg, sizeof(msg)), 0);
		ASSERT_EQ(k[31], 31);
	}
	/* bad env values */
	ASSERT_EQ(seal_master_key("abc", path, k, &created, msg, sizeof(msg)), E(VALIDATION));
	ASSERT_CONTAINS(msg, "NEXRA_MASTER_KEY");
	ASSERT_EQ(seal_master_key("zz0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
				  path, k, &created, msg, sizeof(msg)),
		  E(VALIDATION));
	unlink(path);
	/* a directory that does not exist: cannot create */
	snprintf(path, sizeof(path), "%s/missing/master.key", dir);
	ASSERT_EQ(seal_master_key(NULL, path, k, &created, msg, sizeof(msg)), E(INTERNAL));
	ASSERT_CONTAINS(msg, "cannot create");
	rmdir(dir);
}

/* Regression: the whole key file is read, so "<hex>\n\ngarbage" is refused
 * (a single short read() once accepted it). */
TEST(seal_master_key_refuses_trailing_garbage)
{
	char dir[64], path[96], msg[256], text[128];
	unsigned char k[SEAL_KEY_LEN];
	int created, rc;

	ASSERT_EQ(tmp_keyfile(dir, sizeof(dir), path, sizeof(path)), 0);
	snprintf(text, sizeof(text), "%s\n\nnot part of any key", hex64);
	ASSERT_EQ(write_file(path, text), 0);
	rc = seal_master_key(NULL, path, k, &created, msg, sizeof(msg));
	unlink(path);
	rmdir(dir);
	ASSERT_EQ(rc, E(VALIDATION));
}
