/* Handlers of the audit log and trust explanations, listed in http/routes.c. */
#ifndef NEXRA_AUDIT_API_H
#define NEXRA_AUDIT_API_H

#include "http/req.h"

int api_audit_checkpoint(struct req *r);
int api_audit_public_key(struct req *r);
int api_audit_proof(struct req *r);
int api_audit_consistency(struct req *r);
int api_audit_list(struct req *r);
int api_audit_export(struct req *r);
int api_agent_trust(struct req *r);
/* 0 when the server can sign checkpoints; else answers 503 and returns it. */
int audit_require_key(struct req *r);

#endif
