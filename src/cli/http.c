/*
 * One blocking HTTP request for the CLI (libcurl easy interface), plus the
 * path builder declared in http.h.
 *
 * The response body is collected into a buffer that may grow to
 * CLI_HTTP_RESPONSE_MAX and no further: the write callback refuses the byte
 * that would cross it, curl aborts the transfer, and the caller learns the
 * reply was too large rather than the process growing without bound.
 * Redirects are not followed and only http/https are allowed, so a server
 * URL cannot turn the CLI into a file:// or gopher:// reader, and the API
 * key is never replayed to a host the user did not name.
 */
#include "cli/http.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "core/banned.h"

/* The response body being read; grows geometrically up to max. */
struct body_buf {
	char *data;
	size_t len;
	size_t cap;
	size_t max;
	int too_large;
};

static size_t body_write(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	struct body_buf *b = userdata;
	size_t n = size * nmemb;
	size_t want;
	size_t cap;
	char *grown;

	if (n > b->max - b->len) {
		b->too_large = 1;
		return 0;
	}
	want = b->len + n;
	if (want > b->cap) {
		cap = b->cap ? b->cap : 4096;
		while (cap < want)
			cap = cap > b->max / 2 ? b->max : cap * 2;
		grown = realloc(b->data, cap);
		if (!grown)
			return 0;
		b->data = grown;
		b->cap = cap;
	}
	memcpy(b->data + b->len, ptr, n);
	b->len = want;
	return n;
}

/* Request headers under construction; any failure poisons the list. */
struct hdrs {
	struct curl_slist *list;
	int failed;
};

/* Appends "<prefix><value>". A value with a control character (a CR or LF
 * would start a new header) or one too long for a line fails. */
static void hdrs_add(struct hdrs *h, const char *prefix, const char *value)
{
	char line[1024];
	struct curl_slist *next;
	const char *c;
	int n;

	if (h->failed)
		return;
	for (c = value; *c; c++) {
		if ((unsigned char)*c < 0x20 || *c == 0x7f) {
			h->failed = 1;
			return;
		}
	}
	n = snprintf(line, sizeof(line), "%s%s", prefix, value);
	if (n < 0 || (size_t)n >= sizeof(line)) {
		h->failed = 1;
		return;
	}
	next = curl_slist_append(h->list, line);
	if (!next) {
		h->failed = 1;
		return;
	}
	h->list = next;
}

static void hdrs_build(struct hdrs *h, const struct cli_http_request *req)
{
	hdrs_add(h, "Accept: application/json", "");
	/* Expect: 100-continue would add a round trip to every large body. */
	hdrs_add(h, "Expect:", "");
	/* Without a body, curl would label a POST as a form: send no type. */
	hdrs_add(h, req->body ? "Content-Type: application/json" : "Content-Type:", "");
	if (req->bearer)
		hdrs_add(h, "Authorization: Bearer ", req->bearer);
	if (req->agent_id)
		hdrs_add(h, "X-Agent-ID: ", req->agent_id);
}

int cli_http_send(const struct cli_http_request *req, struct cli_http_response *res)
{
	CURL *h = NULL;
	struct hdrs hdrs = {0};
	struct body_buf body = {.max = CLI_HTTP_RESPONSE_MAX};
	char errbuf[CURL_ERROR_SIZE] = "";
	char url[CLI_PATH_MAX + 2048];
	CURLcode cc;
	int n;
	int ret = -1;

	memset(res, 0, sizeof(*res));
	n = snprintf(url, sizeof(url), "%s%s", req->server, req->path);
	if (n < 0 || (size_t)n >= sizeof(url)) {
		snprintf(res->error, sizeof(res->error), "request URL too long");
		res->local = 1;
		goto out;
	}
	h = curl_easy_init();
	if (!h) {
		snprintf(res->error, sizeof(res->error), "cannot initialise libcurl");
		goto out;
	}

	hdrs_build(&hdrs, req);
	if (hdrs.failed) {
		snprintf(res->error, sizeof(res->error),
		         "cannot build request headers: the API key, admin token or "
		         "agent id is too long or holds a control character");
		res->local = 1;
		goto out;
	}

	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, CLI_HTTP_CONNECT_TIMEOUT_S);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, CLI_HTTP_TIMEOUT_S);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "nexra-cli");
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs.list);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, body_write);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &body);
	if (req->body || strcmp(req->method, "POST") == 0) {
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, req->body ? req->body : "");
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE,
		                 (curl_off_t)(req->body ? req->body_len : 0));
	}
	if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "POST") != 0)
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, req->method);

	cc = curl_easy_perform(h);
	if (cc != CURLE_OK) {
		if (body.too_large)
			snprintf(res->error, sizeof(res->error), "response larger than %zu MiB",
			         CLI_HTTP_RESPONSE_MAX >> 20);
		else
			snprintf(res->error, sizeof(res->error), "%s",
			         errbuf[0] ? errbuf : curl_easy_strerror(cc));
		goto out;
	}
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &res->status);
	if (body.len > 0)
		res->body = json_loadb(body.data, body.len, 0, NULL);
	ret = 0;
out:
	free(body.data);
	curl_slist_free_all(hdrs.list);
	curl_easy_cleanup(h);
	return ret;
}

void cli_http_response_release(struct cli_http_response *res)
{
	if (!res)
		return;
	json_decref(res->body);
	res->body = NULL;
}

static void path_append(struct cli_path *p, const char *s)
{
	size_t n = strlen(s);

	if (p->failed)
		return;
	if (n >= sizeof(p->buf) - p->len) {
		p->failed = 1;
		return;
	}
	memcpy(p->buf + p->len, s, n + 1);
	p->len += n;
}

static void path_append_escaped(struct cli_path *p, const char *raw)
{
	char *esc;

	esc = curl_easy_escape(NULL, raw, 0);
	if (!esc) {
		p->failed = 1;
		return;
	}
	path_append(p, esc);
	curl_free(esc);
}

void cli_path_init(struct cli_path *p, const char *literal)
{
	p->len = 0;
	p->failed = 0;
	p->nquery = 0;
	p->buf[0] = '\0';
	path_append(p, literal);
}

void cli_path_add(struct cli_path *p, const char *literal)
{
	path_append(p, literal);
}

void cli_path_add_segment(struct cli_path *p, const char *raw)
{
	path_append(p, "/");
	path_append_escaped(p, raw);
}

void cli_path_add_query(struct cli_path *p, const char *name, const char *value)
{
	if (!value)
		return;
	path_append(p, p->nquery++ ? "&" : "?");
	path_append(p, name);
	path_append(p, "=");
	path_append_escaped(p, value);
}
