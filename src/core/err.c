/* Tables generated from err.def; see err.h. */
#include "core/err.h"

struct err_row {
	int status;
	const char *code;
	const char *msg;
};

static const struct err_row rows[ERR__COUNT] = {
	[ERR_OK] = {200, "OK", "ok"},
#define X(name, st, cd, m) [ERR_##name] = {st, cd, m},
#include "core/err.def"
#undef X
};

static const struct err_row *row(int rc)
{
	int i = -rc;

	if (i <= 0 || i >= ERR__COUNT)
		return rc == 0 ? &rows[ERR_OK] : &rows[ERR_INTERNAL];
	return &rows[i];
}

int err_status(int rc) { return row(rc)->status; }
const char *err_code(int rc) { return row(rc)->code; }
const char *err_message(int rc) { return row(rc)->msg; }
