/*
 * Stripe transport; see stripe_http.h. One easy handle per batch slot is
 * kept for the client's life (so their options are set once) and one
 * multi handle, whose connection cache keeps the TLS connection to Stripe
 * alive from one batch to the next.
 */
#include "billing/stripe_http.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "core/err.h"
#include "core/timefmt.h"
#include "core/banned.h"

#define POLL_MS 100 /* how often a waiting batch looks at the stop flag */

struct stripe_http {
	CURLM *multi;
	CURL *easy[STRIPE_HTTP_MAX_CALLS];
};

void stripe_call_release(struct stripe_call *c)
{
	buf_release(&c->response);
	sodium_memzero(c->auth, sizeof(c->auth));
}

int stripe_http_new(struct stripe_http **out)
{
	struct stripe_http *h = calloc(1, sizeof(*h));

	*out = NULL;
	if (!h)
		return E(INTERNAL);
	h->multi = curl_multi_init();
	if (!h->multi) {
		free(h);
		return E(INTERNAL);
	}
	curl_multi_setopt(h->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)STRIPE_HTTP_MAX_CALLS);
	*out = h;
	return 0;
}

void stripe_http_free(struct stripe_http *h)
{
	if (!h)
		return;
	for (int i = 0; i < STRIPE_HTTP_MAX_CALLS; i++)
		curl_easy_cleanup(h->easy[i]);
	curl_multi_cleanup(h->multi);
	free(h);
}

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	struct stripe_call *c = userdata;
	size_t n = size * nmemb;

	return buf_add(&c->response, ptr, n) ? 0 : n; /* over the cap: the call fails */
}

static size_t on_header(char *ptr, size_t size, size_t nitems, void *userdata)
{
	static const char name[] = "retry-after:";
	struct stripe_call *c = userdata;
	size_t n = size * nitems, i = sizeof(name) - 1, end;

	if (n > i && !strncasecmp(ptr, name, i)) {
		while (i < n && (ptr[i] == ' ' || ptr[i] == '\t'))
			i++;
		end = n;
		while (end > i && (ptr[end - 1] == '\r' || ptr[end - 1] == '\n' ||
				   ptr[end - 1] == ' '))
			end--;
		snprintf(c->retry_after, sizeof(c->retry_after), "%.*s", (int)(end - i), ptr + i);
	}
	return n;
}

static CURL *easy_for(struct stripe_http *h, int i)
{
	CURL *e = h->easy[i];

	if (e)
		return e;
	e = curl_easy_init();
	if (!e)
		return NULL;
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
	curl_easy_setopt(e, CURLOPT_PROXY, "");
	curl_easy_setopt(e, CURLOPT_USERAGENT, "nexra");
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
	h->easy[i] = e;
	return e;
}

/* Ready call i on its handle and add it; headers gets its header list. */
static int start(struct stripe_http *h, struct stripe_call *c, int i, long timeout_ms,
		 struct curl_slist **headers, char *errbuf)
{
	CURL *e = easy_for(h, i);
	struct curl_slist *l = NULL, *t;
	const char *hs[] = {c->auth, c->idem, "Content-Type: application/x-www-form-urlencoded",
			    "Expect:"};

	if (!e)
		return E(INTERNAL);
	for (size_t k = 0; k < sizeof(hs) / sizeof(hs[0]); k++) {
		t = curl_slist_append(l, hs[k]);
		if (!t) {
			curl_slist_free_all(l);
			return E(INTERNAL);
		}
		l = t;
	}
	*headers = l;
	curl_easy_setopt(e, CURLOPT_PRIVATE, c);
	curl_easy_setopt(e, CURLOPT_URL, c->url);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, l);
	curl_easy_setopt(e, CURLOPT_POSTFIELDS, c->body);
	curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)c->body_len);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, c);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, c);
	errbuf[0] = '\0';
	return curl_multi_add_handle(h->multi, e) == CURLM_OK ? 0 : E(INTERNAL);
}

static void finish(struct stripe_call *c, CURL *e, CURLcode res, const char *errbuf,
		   uint64_t t0)
{
	c->elapsed_ns = time_mono_ns() - t0;
	if (res == CURLE_OK) {
		c->answered = 1;
		curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &c->status);
		return;
	}
	snprintf(c->error, sizeof(c->error), "%s",
		 res == CURLE_WRITE_ERROR ? "answer larger than 64 KiB"
		 : errbuf[0]		 ? errbuf
					 : curl_easy_strerror(res));
}

int stripe_http_run(struct stripe_http *h, struct stripe_call *calls, int n, long timeout_ms,
		    const atomic_int *stop)
{
	struct curl_slist *headers[STRIPE_HTTP_MAX_CALLS] = {0};
	char errbuf[STRIPE_HTTP_MAX_CALLS][CURL_ERROR_SIZE];
	int added[STRIPE_HTTP_MAX_CALLS] = {0};
	uint64_t t0 = time_mono_ns();
	int running = 0, left = 0, rc = 0, msgs;
	CURLMsg *m;

	if (n > STRIPE_HTTP_MAX_CALLS)
		return E(INTERNAL);
	for (int i = 0; i < n; i++) {
		struct stripe_call *c = &calls[i];

		c->answered = c->cancelled = 0;
		c->status = 0;
		c->retry_after[0] = c->error[0] = '\0';
		buf_init(&c->response, STRIPE_HTTP_MAX_RESPONSE);
		if (start(h, c, i, timeout_ms, &headers[i], errbuf[i])) {
			snprintf(c->error, sizeof(c->error), "out of memory");
			continue;
		}
		added[i] = 1;
		left++;
	}
	while (left > 0) {
		if (curl_multi_perform(h->multi, &running) != CURLM_OK) {
			rc = E(INTERNAL);
			break;
		}
		while ((m = curl_multi_info_read(h->multi, &msgs))) {
			struct stripe_call *c = NULL;

			if (m->msg != CURLMSG_DONE)
				continue;
			curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&c);
			finish(c, m->easy_handle, m->data.result, errbuf[c - calls], t0);
			curl_multi_remove_handle(h->multi, m->easy_handle);
			added[c - calls] = 0;
			left--;
		}
		if (left == 0 || (stop && atomic_load(stop)))
			break;
		curl_multi_poll(h->multi, NULL, 0, POLL_MS, NULL);
	}
	for (int i = 0; i < n; i++) {
		if (added[i]) {
			curl_multi_remove_handle(h->multi, h->easy[i]);
			calls[i].cancelled = 1;
			snprintf(calls[i].error, sizeof(calls[i].error), "cancelled at shutdown");
		}
		curl_slist_free_all(headers[i]);
		if (h->easy[i]) { /* the handle keeps no pointer into this batch */
			curl_easy_setopt(h->easy[i], CURLOPT_HTTPHEADER, NULL);
			curl_easy_setopt(h->easy[i], CURLOPT_ERRORBUFFER, NULL);
			curl_easy_setopt(h->easy[i], CURLOPT_POSTFIELDS, NULL);
		}
	}
	return rc;
}
