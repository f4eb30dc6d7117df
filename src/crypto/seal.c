/* Sealing secrets at rest; see seal.h. */
#include "crypto/seal.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/err.h"
#include "core/banned.h"

#define NONCE_LEN crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define TAG_LEN crypto_aead_xchacha20poly1305_ietf_ABYTES

int seal_global_init(void)
{
	return sodium_init() < 0 ? E(INTERNAL) : 0;
}

static int from_hex(const char *hex, size_t len, unsigned char key[SEAL_KEY_LEN])
{
	size_t got = 0;

	while (len && (hex[len - 1] == '\n' || hex[len - 1] == '\r' || hex[len - 1] == ' '))
		len--;
	if (len != 2 * SEAL_KEY_LEN)
		return -1;
	if (sodium_hex2bin(key, SEAL_KEY_LEN, hex, len, NULL, &got, NULL) || got != SEAL_KEY_LEN)
		return -1;
	return 0;
}

int seal_master_key(const char *env_hex, const char *file, unsigned char key[SEAL_KEY_LEN],
		    int *created, char *msg, size_t msgsz)
{
	char hex[256];
	ssize_t n;
	size_t got;
	int fd, tries = 0;

	*created = 0;
	if (env_hex && env_hex[0]) {
		if (from_hex(env_hex, strlen(env_hex), key)) {
			snprintf(msg, msgsz, "NEXRA_MASTER_KEY must be 64 hex characters");
			return E(VALIDATION);
		}
		return 0;
	}
again:
	fd = open(file, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) { /* the whole file, so trailing garbage is seen */
		got = 0;
		while ((n = read(fd, hex + got, sizeof(hex) - got)) > 0 && got + (size_t)n < sizeof(hex))
			got += (size_t)n;
		close(fd);
		if (n != 0 || from_hex(hex, got, key)) {
			snprintf(msg, msgsz, "master key file %s must hold 64 hex characters", file);
			return E(VALIDATION);
		}
		return 0;
	}
	if (errno != ENOENT) {
		snprintf(msg, msgsz, "cannot read master key file %s: %s", file, strerror(errno));
		return E(INTERNAL);
	}
	randombytes_buf(key, SEAL_KEY_LEN);
	sodium_bin2hex(hex, sizeof(hex), key, SEAL_KEY_LEN);
	hex[2 * SEAL_KEY_LEN] = '\n';
	fd = open(file, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0 && errno == EEXIST && tries++ == 0) {
		usleep(100000); /* another process is creating it: read theirs */
		goto again;
	}
	if (fd < 0 || write(fd, hex, 2 * SEAL_KEY_LEN + 1) != 2 * SEAL_KEY_LEN + 1 ||
	    fsync(fd)) {
		snprintf(msg, msgsz, "cannot create master key file %s: %s", file, strerror(errno));
		if (fd >= 0)
			close(fd);
		return E(INTERNAL);
	}
	close(fd);
	*created = 1;
	return 0;
}

int seal(const unsigned char key[SEAL_KEY_LEN], const void *pt, size_t n, const char *ad,
	 unsigned char **out, size_t *outlen)
{
	unsigned char *c = malloc(NONCE_LEN + n + TAG_LEN);
	unsigned long long clen = 0;

	*out = NULL;
	if (!c)
		return E(INTERNAL);
	randombytes_buf(c, NONCE_LEN);
	crypto_aead_xchacha20poly1305_ietf_encrypt(c + NONCE_LEN, &clen, pt, n,
						   (const unsigned char *)ad, strlen(ad), NULL, c,
						   key);
	*out = c;
	*outlen = NONCE_LEN + (size_t)clen;
	return 0;
}

int unseal(const unsigned char key[SEAL_KEY_LEN], const unsigned char *in, size_t n,
	   const char *ad, char **out, size_t *outlen)
{
	unsigned long long plen = 0;
	char *p;

	*out = NULL;
	if (n < NONCE_LEN + TAG_LEN)
		return E(INTERNAL);
	p = malloc(n - NONCE_LEN - TAG_LEN + 1);
	if (!p)
		return E(INTERNAL);
	if (crypto_aead_xchacha20poly1305_ietf_decrypt((unsigned char *)p, &plen, NULL,
						       in + NONCE_LEN, n - NONCE_LEN, 
						       (const unsigned char *)ad, strlen(ad), in,
						       key)) {
		free(p);
		return E(INTERNAL);
	}
	p[plen] = '\0';
	*out = p;
	if (outlen)
		*outlen = (size_t)plen;
	return 0;
}
