/* Handlers of the delegation module, listed in http/routes.c. */
#ifndef NEXRA_DELEGATION_API_H
#define NEXRA_DELEGATION_API_H

#include "http/req.h"

int api_delegate(struct req *r);
int api_delegation_get(struct req *r);
int api_delegation_list(struct req *r);

#endif
