/*
 * Offline verification of an audit export (docs/audit.md, "Verifying an
 * export"): the JSONL or CSV file is read once, front to back, in bounded
 * memory; the tree is rebuilt from the entry bytes and checked against the
 * export's signed checkpoint and, optionally, an older checkpoint. The
 * first problem found is reported with the line and event it is about.
 * Pure apart from reading the given stream.
 */
#ifndef NEXRA_AUDIT_VERIFY_H
#define NEXRA_AUDIT_VERIFY_H

#include <stdint.h>
#include <stdio.h>

#include "audit/checkpoint.h"

#define AUDIT_LINE_MAX (1024 * 1024) /* longest line (or CSV record) accepted */

struct audit_verify_result {
	int64_t entries;    /* entries read and hashed */
	uint64_t tree_size; /* the tree after the export's last entry */
	int64_t line;       /* of the first problem (0: none or not about a line) */
	int64_t event_id;   /* the entry the problem is about (0: none) */
	char message[512];  /* the first problem, or "" */
};

/* 0 when the export verifies with pk (and extends old, when non-NULL);
 * -1 with out->message naming the first problem. */
int audit_verify_stream(FILE *f, const unsigned char pk[CHECKPOINT_PK_LEN],
			const struct checkpoint *old, struct audit_verify_result *out);

#endif
