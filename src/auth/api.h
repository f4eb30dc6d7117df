/* Handlers of the auth module (orgs and keys), listed in http/routes.c. */
#ifndef NEXRA_AUTH_API_H
#define NEXRA_AUTH_API_H

#include "http/req.h"

int api_org_register(struct req *r);
int api_org_me(struct req *r);
int api_key_create(struct req *r);
int api_key_list(struct req *r);
int api_key_revoke(struct req *r);

#endif
