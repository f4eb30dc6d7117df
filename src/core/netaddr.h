/*
 * Which addresses Nexra may call outside --dev: public unicast only. Used
 * at registration for IP-literal hosts, and by outbound calls at connect
 * time for resolved addresses. Pure.
 */
#ifndef NEXRA_CORE_NETADDR_H
#define NEXRA_CORE_NETADDR_H

#include <sys/socket.h>

/* 1 if sa (AF_INET or AF_INET6) is a public unicast address. */
int netaddr_is_public(const struct sockaddr *sa);

/* For a URL host: *is_literal = 1 and the answer for an IP literal
 * ("10.0.0.1", "[::1]" or "::1"); for a name, 1 unless it is "localhost"
 * or ends in ".localhost" (names are checked again when resolved). */
int netaddr_host_is_public(const char *host, int *is_literal);

#endif
