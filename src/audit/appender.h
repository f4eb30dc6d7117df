/*
 * The background tree appender of `nexra serve`: a thread that, every
 * AUDIT_APPEND_INTERVAL_MS, finds the orgs whose Merkle tree is behind
 * their audit log and appends what is new (audit/log.h), one batch per org
 * per round so that a large backlog of one org does not starve the
 * others. Requests that need a current tree catch up themselves; this
 * keeps that work small. Several servers may run one each: appends are
 * serialized per org by the store.
 */
#ifndef NEXRA_AUDIT_APPENDER_H
#define NEXRA_AUDIT_APPENDER_H

#include "store/store.h"

#define AUDIT_APPEND_INTERVAL_MS 500

struct audit_appender;

/* Start the thread; 0 or E(INTERNAL). */
int audit_appender_new(struct store *s, struct audit_appender **out);
/* Stop the thread (finishing the batch it is in) and free; NULL is fine. */
void audit_appender_free(struct audit_appender *a);

#endif
