/* Bounded whole-file reads for the CLI; see file.h. */
#include "cli/file.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/banned.h"

int cli_file_read(const char *path, size_t max, char **out, size_t *len)
{
	FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
	char *buf = NULL;
	size_t n = 0, got;
	int rc = -1, saved;

	*out = NULL;
	*len = 0;
	if (!f)
		return -1;
	buf = malloc(max + 1);
	if (!buf)
		goto out;
	do {
		got = fread(buf + n, 1, max - n, f);
		n += got;
	} while (got > 0 && n < max);
	if (ferror(f)) {
		errno = EIO;
		goto out;
	}
	buf[n] = '\0';
	*out = buf;
	*len = n;
	buf = NULL;
	rc = 0;
out:
	saved = errno;
	free(buf);
	if (f != stdin)
		fclose(f);
	errno = saved;
	return rc;
}
