/*
 * An audit entry's canonical bytes: what the Merkle tree hashes, what the
 * export carries, and what an outside verifier re-hashes (docs/audit.md is
 * the specification; this file is its one implementation in the server).
 *
 * The canonical form is a JSON object without whitespace, its members in
 * byte order of their names:
 *
 *   budget_remaining  USD number (money_format of micro-USD), or null
 *   callee_id         string, or null when there was no callee
 *   caller_id         string
 *   cost_usd          USD number
 *   decision          "ALLOW" | "BLOCK"
 *   delegation_id     string
 *   event_id          integer, 1, 2, 3... per org
 *   org_id            string
 *   policy_ref        string, or null when no policy rule decided
 *   status            the delegation's final status
 *   timestamp         RFC 3339 UTC, seconds ("2026-03-16T14:22:38Z")
 *   trust_delta       {"after": n, "before": n}, or null without a callee
 *
 * Strings are written by jw_str (", \ and control characters escaped, the
 * rest verbatim UTF-8); numbers by jw_money / jw_num (shortest decimal
 * that reads back as the stored value). The same object, as it is, is the
 * entry of GET /v1/audit/log.
 */
#ifndef NEXRA_AUDIT_ENTRY_H
#define NEXRA_AUDIT_ENTRY_H

#include "audit/merkle.h"
#include "core/buf.h"
#include "core/jsonw.h"
#include "store/store.h"

#define AUDIT_ENTRY_MAX 8192 /* canonical bytes of any entry fit */

/* The canonical JSON of e at the writer's position. */
void audit_entry_write(struct jsonw *jw, const struct audit_entry *e);
/* The canonical bytes into buf (reset first); 0 or the buffer's error. */
int audit_entry_bytes(const struct audit_entry *e, struct buf *b);
/* The entry's leaf hash: SHA-256(0x00 || canonical bytes). */
int audit_entry_leaf(const struct audit_entry *e, merkle_hash out);

#endif
