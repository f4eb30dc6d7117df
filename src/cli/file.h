/* Reading a whole input file for a CLI command ("-" is stdin), bounded. */
#ifndef NEXRA_CLI_FILE_H
#define NEXRA_CLI_FILE_H

#include <stddef.h>

/* Up to max bytes of path into *out (malloc'd, NUL-terminated; caller
 * frees) and *len. Read max = limit + 1 to tell "over the limit" from "at
 * it". 0, or -1 with errno set. */
int cli_file_read(const char *path, size_t max, char **out, size_t *len);

#endif
