/* Public-address checks; see netaddr.h. */
#include "core/netaddr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/banned.h"

static int v4_public(uint32_t a)
{
	static const struct {
		uint32_t net, mask;
	} blocked[] = {
		{0x00000000, 0xff000000}, /* 0/8 this network */
		{0x0a000000, 0xff000000}, /* 10/8 private */
		{0x64400000, 0xffc00000}, /* 100.64/10 shared (CGNAT) */
		{0x7f000000, 0xff000000}, /* 127/8 loopback */
		{0xa9fe0000, 0xffff0000}, /* 169.254/16 link-local */
		{0xac100000, 0xfff00000}, /* 172.16/12 private */
		{0xc0000000, 0xffffff00}, /* 192.0.0/24 protocol assignments */
		{0xc0000200, 0xffffff00}, /* 192.0.2/24 documentation */
		{0xc0a80000, 0xffff0000}, /* 192.168/16 private */
		{0xc6120000, 0xfffe0000}, /* 198.18/15 benchmarking */
		{0xc6336400, 0xffffff00}, /* 198.51.100/24 documentation */
		{0xcb007100, 0xffffff00}, /* 203.0.113/24 documentation */
		{0xe0000000, 0xe0000000}, /* 224/3 multicast, reserved, broadcast */
	};

	for (size_t i = 0; i < sizeof(blocked) / sizeof(blocked[0]); i++)
		if ((a & blocked[i].mask) == blocked[i].net)
			return 0;
	return 1;
}

static int v6_public(const struct in6_addr *a)
{
	const uint8_t *b = a->s6_addr;
	static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

	if (!memcmp(b, v4mapped, 12))
		return v4_public((uint32_t)b[12] << 24 | (uint32_t)b[13] << 16 |
				 (uint32_t)b[14] << 8 | b[15]);
	if ((b[0] & 0xe0) != 0x20) /* only 2000::/3 is global unicast */
		return 0;
	if (b[0] == 0x20 && b[1] == 0x02) /* 2002::/16 6to4: judge the IPv4 inside */
		return v4_public((uint32_t)b[2] << 24 | (uint32_t)b[3] << 16 |
				 (uint32_t)b[4] << 8 | b[5]);
	if (b[0] == 0x20 && b[1] == 0x01 && b[2] == 0 && b[3] == 0)
		return 0; /* 2001::/32 Teredo: tunnels to anywhere */
	if (b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x0d && b[3] == 0xb8)
		return 0; /* 2001:db8::/32 documentation */
	return 1;
}

int netaddr_is_public(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		return v4_public(ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr));
	if (sa->sa_family == AF_INET6)
		return v6_public(&((const struct sockaddr_in6 *)sa)->sin6_addr);
	return 0;
}

int netaddr_host_is_public(const char *host, int *is_literal)
{
	struct in_addr a4;
	struct in6_addr a6;
	char h[64];
	size_t n = strlen(host), sfx = strlen(".localhost");

	*is_literal = 0;
	if (n >= 2 && host[0] == '[' && host[n - 1] == ']' && n - 2 < sizeof(h)) {
		memcpy(h, host + 1, n - 2);
		h[n - 2] = '\0';
		host = h;
	}
	if (inet_pton(AF_INET, host, &a4) == 1) {
		*is_literal = 1;
		return v4_public(ntohl(a4.s_addr));
	}
	if (inet_pton(AF_INET6, host, &a6) == 1) {
		*is_literal = 1;
		return v6_public(&a6);
	}
	n = strlen(host);
	if (n && n < sizeof(h) && host[n - 1] == '.') { /* "localhost." is localhost */
		memmove(h, host, n - 1);
		h[n - 1] = '\0';
		host = h;
		n--;
	}
	if (!strcasecmp(host, "localhost") || (n > sfx && !strcasecmp(host + n - sfx, ".localhost")))
		return 0;
	return 1;
}
