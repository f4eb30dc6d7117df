/*
 * core/netaddr: only public unicast addresses are callable outside --dev.
 * Checked both for URL hosts (text) and for resolved socket addresses.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "core/netaddr.h"
#include "test.h"

/* netaddr_is_public on the sockaddr form of an IP literal; -1 if not one. */
static int sa_public(const char *ip)
{
	struct sockaddr_in a4;
	struct sockaddr_in6 a6;

	memset(&a4, 0, sizeof(a4));
	memset(&a6, 0, sizeof(a6));
	if (inet_pton(AF_INET, ip, &a4.sin_addr) == 1) {
		a4.sin_family = AF_INET;
		return netaddr_is_public((const struct sockaddr *)&a4);
	}
	if (inet_pton(AF_INET6, ip, &a6.sin6_addr) == 1) {
		a6.sin6_family = AF_INET6;
		return netaddr_is_public((const struct sockaddr *)&a6);
	}
	return -1;
}

static const struct {
	const char *ip;
	int pub;
} ips[] = {
	{"127.0.0.1", 0},       {"127.255.255.254", 0}, {"10.0.0.1", 0},
	{"10.255.255.255", 0},  {"172.16.0.1", 0},      {"172.31.255.255", 0},
	{"172.15.255.255", 1},  {"172.32.0.1", 1},      {"192.168.0.1", 0},
	{"192.168.255.255", 0}, {"192.169.0.1", 1},     {"169.254.169.254", 0},
	{"100.64.0.1", 0},      {"100.127.255.255", 0}, {"100.63.255.255", 1},
	{"100.128.0.1", 1},     {"0.0.0.0", 0},         {"0.1.2.3", 0},
	{"224.0.0.1", 0},       {"255.255.255.255", 0}, {"240.0.0.1", 0},
	{"192.0.2.1", 0},       {"198.18.0.1", 0},      {"198.51.100.7", 0},
	{"203.0.113.9", 0},     {"8.8.8.8", 1},         {"1.1.1.1", 1},
	{"93.184.216.34", 1},   {"::1", 0},             {"::", 0},
	{"fe80::1", 0},         {"fc00::1", 0},         {"fd12:3456::1", 0},
	{"ff02::1", 0},         {"::ffff:127.0.0.1", 0}, {"::ffff:10.1.2.3", 0},
	{"::ffff:8.8.8.8", 1},  {"2001:db8::1", 0},     {"2606:4700::1", 1},
	{"2001:4860:4860::8888", 1},
};

TEST(netaddr_ip_literals)
{
	for (size_t i = 0; i < sizeof(ips) / sizeof(ips[0]); i++) {
		int lit = -1, got = netaddr_host_is_public(ips[i].ip, &lit);

		if (got != ips[i].pub || lit != 1)
			FAIL_AT("netaddr_host_is_public(%s) = %d literal %d, want %d", ips[i].ip, got,
				lit, ips[i].pub);
	}
}

TEST(netaddr_sockaddr_matches_literals)
{
	for (size_t i = 0; i < sizeof(ips) / sizeof(ips[0]); i++) {
		int got = sa_public(ips[i].ip);

		if (got != ips[i].pub)
			FAIL_AT("netaddr_is_public(%s) = %d, want %d", ips[i].ip, got, ips[i].pub);
	}
	{
		struct sockaddr sa;

		memset(&sa, 0, sizeof(sa));
		sa.sa_family = AF_UNIX;
		ASSERT_EQ(netaddr_is_public(&sa), 0);
	}
}

TEST(netaddr_bracketed_v6)
{
	int lit = 0;

	ASSERT_EQ(netaddr_host_is_public("[::1]", &lit), 0);
	ASSERT_EQ(lit, 1);
	ASSERT_EQ(netaddr_host_is_public("[2606:4700::1]", &lit), 1);
	ASSERT_EQ(lit, 1);
	ASSERT_EQ(netaddr_host_is_public("[fe80::1]", &lit), 0);
	ASSERT_EQ(netaddr_host_is_public("[::ffff:127.0.0.1]", &lit), 0);
}

TEST(netaddr_names)
{
	static const struct {
		const char *host;
		int pub;
	} names[] = {
		{"localhost", 0},   {"LOCALHOST", 0},     {"a.localhost", 0},
		{"x.y.Localhost", 0}, {"example.com", 1}, {"notlocalhost", 1},
		{"localhost.example.com", 1}, {"my-agent.io", 1},
	};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		int lit = -1, got = netaddr_host_is_public(names[i].host, &lit);

		if (got != names[i].pub || lit != 0)
			FAIL_AT("netaddr_host_is_public(%s) = %d literal %d, want %d", names[i].host,
				got, lit, names[i].pub);
	}
}

/* "localhost." is the same DNS name as "localhost" (a fully qualified
 * spelling that curl hands through unchanged). */
TEST(netaddr_localhost_trailing_dot)
{
	int lit = -1;

	ASSERT_EQ(netaddr_host_is_public("localhost.", &lit), 0);
	ASSERT_EQ(lit, 0);
	ASSERT_EQ(netaddr_host_is_public("a.localhost.", &lit), 0);
	ASSERT_EQ(netaddr_host_is_public("LocalHost.", &lit), 0);
	ASSERT_EQ(netaddr_host_is_public("example.com.", &lit), 1);
}

/* Regression: 6to4 addresses are judged by the IPv4 address they embed, and
 * Teredo (2001::/32) tunnels are never treated as public. */
TEST(netaddr_6to4_and_teredo)
{
	int lit = 0;

	ASSERT(!netaddr_host_is_public("2002:7f00:1::1", &lit));  /* 127.0.0.1 inside */
	ASSERT(lit);
	ASSERT(!netaddr_host_is_public("2002:c0a8:101::1", &lit)); /* 192.168.1.1 inside */
	ASSERT(netaddr_host_is_public("2002:0808:0808::1", &lit)); /* 8.8.8.8 inside */
	ASSERT(!netaddr_host_is_public("2001:0:4136:e378::1", &lit)); /* Teredo */
	ASSERT(netaddr_host_is_public("2001:4860::8888", &lit));     /* not Teredo */
}
