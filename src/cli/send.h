/*
 * Sending a JSON body built on the command line (policy.c, discover.c):
 * the body is a jansson object; USD amounts are spliced in as the user
 * typed them (a plain decimal: the server parses money exactly and must see
 * the same digits, not a double's rounding).
 */
#ifndef NEXRA_CLI_SEND_H
#define NEXRA_CLI_SEND_H

#include <jansson.h>

#include "cli/cmd.h"

/* 1 for a plain decimal ("0.25", "3"). */
int cli_decimal_ok(const char *s);

/* POST/PUT body (reference consumed) to path; when money_key is non-NULL,
 * "money_key": money (digits as typed, checked with cli_decimal_ok by the
 * caller) is added. Returns the exit status. */
int cli_send_json(const struct cli_ctx *ctx, const char *method, const char *path, json_t *body,
		  const char *money_key, const char *money);

#endif
