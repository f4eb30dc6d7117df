/* Handlers of the agent registry, listed in http/routes.c. */
#ifndef NEXRA_REGISTRY_API_H
#define NEXRA_REGISTRY_API_H

#include "http/req.h"

int api_agent_register(struct req *r);
int api_agent_update(struct req *r);
int api_agent_get(struct req *r);
int api_agent_list(struct req *r);
int api_agent_pause(struct req *r);
int api_agent_activate(struct req *r);

#endif
