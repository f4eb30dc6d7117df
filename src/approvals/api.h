/* Handlers of the approvals module, listed in http/routes.c. */
#ifndef NEXRA_APPROVALS_API_H
#define NEXRA_APPROVALS_API_H

#include "http/req.h"

int api_delegation_approve(struct req *r);
int api_delegation_reject(struct req *r);

#endif
