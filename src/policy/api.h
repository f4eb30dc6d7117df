/* Handlers of the policy module, listed in http/routes.c. */
#ifndef NEXRA_POLICY_API_H
#define NEXRA_POLICY_API_H

#include "http/req.h"

int api_policy_upload(struct req *r);
int api_policy_list(struct req *r);
int api_policy_get(struct req *r);
int api_policy_version(struct req *r);
int api_policy_patch(struct req *r);
int api_policy_delete(struct req *r);
int api_policy_evaluate(struct req *r);
int api_policy_simulate(struct req *r);

#endif
