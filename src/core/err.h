/*
 * Errors: every fallible function in Nexra returns 0 or a negative value
 * from this catalogue (err.def). The HTTP layer maps the value to a status
 * and an error.code string; nothing else needs a switch over errors.
 *
 * ERR_NOMEM and ERR_DB are internal refinements that present as INTERNAL.
 */
#ifndef NEXRA_CORE_ERR_H
#define NEXRA_CORE_ERR_H

enum err {
	ERR_OK = 0,
#define X(name, status, code, msg) ERR_##name,
#include "core/err.def"
#undef X
	ERR__COUNT
};

/* Values as returned by functions: ERR_OK or -ERR_x. */
#define E(name) (-(int)ERR_##name)

/* Status, code and default message of a returned value (0 or -ERR_x).
 * Unknown values map to INTERNAL. Strings are static. */
int err_status(int rc);
const char *err_code(int rc);
const char *err_message(int rc);

#endif
