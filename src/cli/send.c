/* JSON bodies from the command line; see send.h. */
#include "cli/send.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/banned.h"

int cli_decimal_ok(const char *s)
{
	int digits = 0, dot = 0;

	for (; *s; s++) {
		if (*s >= '0' && *s <= '9')
			digits++;
		else if (*s == '.' && !dot && digits)
			dot = 1;
		else
			return 0;
	}
	return digits > 0 && s[-1] != '.';
}

int cli_send_json(const struct cli_ctx *ctx, const char *method, const char *path, json_t *body,
		  const char *money_key, const char *money)
{
	char *fields = body ? json_dumps(body, JSON_COMPACT) : NULL, *text = NULL;
	size_t n;
	int ret;

	json_decref(body);
	if (!fields) {
		fprintf(stderr, "error: cannot encode the request (is every value valid UTF-8?)\n");
		return CLI_EXIT_FAIL;
	}
	if (money_key) { /* {...} -> {...,"key":<digits as typed>} */
		n = strlen(fields) + strlen(money_key) + strlen(money) + 8;
		text = malloc(n);
		if (!text) {
			free(fields);
			return CLI_EXIT_FAIL;
		}
		fields[strlen(fields) - 1] = '\0';
		snprintf(text, n, "%s%s\"%s\":%s}", fields, strlen(fields) > 1 ? "," : "", money_key,
			 money);
		free(fields);
		fields = text;
	}
	ret = cli_run(ctx, method, path, fields, strlen(fields), CLI_AUTH_KEY, NULL);
	free(fields);
	return ret;
}
