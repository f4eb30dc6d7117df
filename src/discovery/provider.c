/* The embeddings provider client; see provider.h. */
#include "discovery/provider.h"

#include <curl/curl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/banned.h"

struct provider {
	char *url, *model, *auth; /* auth: "Authorization: Bearer ..." or NULL */
	pthread_mutex_t lock;
	int64_t down_until;       /* monotonic seconds; breaker open before it */
	char last_why[PROVIDER_WHY_MAX]; /* why the breaker opened */
};

static int64_t mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec;
}

int provider_new(const char *url, const char *model, const char *api_key, struct provider **out)
{
	struct provider *p = calloc(1, sizeof(*p));

	*out = NULL;
	if (!p)
		return E(INTERNAL);
	p->url = strdup(url);
	p->model = strdup(model);
	if (api_key && *api_key) {
		size_t n = strlen(api_key) + 32;

		p->auth = malloc(n);
		if (p->auth)
			snprintf(p->auth, n, "Authorization: Bearer %s", api_key);
	}
	if (!p->url || !p->model || (api_key && *api_key && !p->auth)) {
		provider_free(p);
		return E(INTERNAL);
	}
	pthread_mutex_init(&p->lock, NULL);
	*out = p;
	return 0;
}

void provider_free(struct provider *p)
{
	if (!p)
		return;
	free(p->url);
	free(p->model);
	free(p->auth);
	if (p->url)
		pthread_mutex_destroy(&p->lock);
	free(p);
}

const char *provider_model(const struct provider *p)
{
	return p->model;
}

int provider_available(struct provider *p)
{
	int up;

	pthread_mutex_lock(&p->lock);
	up = p->down_until <= mono_s();
	pthread_mutex_unlock(&p->lock);
	return up;
}

int provider_parse(const char *body, size_t len, float **vec, int *dim, char *why)
{
	json_error_t je;
	json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je), *arr, *item;
	size_t n, i;
	float *v = NULL;
	int rc = E(VALIDATION);

	*vec = NULL;
	*dim = 0;
	if (!root) {
		snprintf(why, PROVIDER_WHY_MAX, "response is not JSON");
		return rc;
	}
	arr = json_object_get(root, "data");
	item = json_is_array(arr) ? json_array_get(arr, 0) : NULL;
	arr = json_is_object(item) ? json_object_get(item, "embedding") : NULL;
	n = json_is_array(arr) ? json_array_size(arr) : 0;
	if (!n || n > PROVIDER_DIM_MAX) {
		snprintf(why, PROVIDER_WHY_MAX, "response has no data[0].embedding of 1..%d numbers",
			 PROVIDER_DIM_MAX);
		goto out;
	}
	v = malloc(n * sizeof(float));
	if (!v) {
		snprintf(why, PROVIDER_WHY_MAX, "out of memory");
		goto out;
	}
	json_array_foreach(arr, i, item) {
		if (!json_is_number(item)) {
			snprintf(why, PROVIDER_WHY_MAX, "embedding[%zu] is not a number", i);
			goto out;
		}
		v[i] = (float)json_number_value(item);
	}
	*vec = v;
	*dim = (int)n;
	v = NULL;
	rc = 0;
out:
	free(v);
	json_decref(root);
	return rc;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *ctx)
{
	struct buf *b = ctx;
	size_t n = size * nmemb;

	if (buf_add(b, data, n))
		return 0;
	return n;
}

static char *request_body(const struct provider *p, const char *text)
{
	json_t *o = json_pack("{s:s, s:s}", "model", p->model, "input", text);
	char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;

	json_decref(o);
	return s;
}

int provider_embed(struct provider *p, const char *text, long timeout_ms, float **vec, int *dim,
		   char *why)
{
	struct curl_slist *h = NULL;
	struct buf resp;
	char err[CURL_ERROR_SIZE] = "";
	char *body = NULL;
	long status = 0;
	CURL *e = NULL;
	CURLcode cc;
	int rc = E(UNAVAILABLE), open;

	*vec = NULL;
	*dim = 0;
	buf_init(&resp, PROVIDER_RESPONSE_MAX);
	pthread_mutex_lock(&p->lock);
	open = p->down_until > mono_s();
	if (open)
		snprintf(why, PROVIDER_WHY_MAX, "%.100s (not retried for %ds)", p->last_why,
			 PROVIDER_COOLDOWN_S);
	pthread_mutex_unlock(&p->lock);
	if (open)
		return rc;
	body = request_body(p, text);
	e = curl_easy_init();
	h = curl_slist_append(NULL, "Content-Type: application/json");
	if (h && p->auth)
		h = curl_slist_append(h, p->auth);
	if (!body || !e || !h) {
		snprintf(why, PROVIDER_WHY_MAX, "out of memory");
		goto out;
	}
	curl_easy_setopt(e, CURLOPT_URL, p->url);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_PROXY, "");
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, &resp);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, err);
	cc = curl_easy_perform(e);
	if (cc != CURLE_OK) {
		snprintf(why, PROVIDER_WHY_MAX, "provider unreachable: %.130s",
			 err[0] ? err : curl_easy_strerror(cc));
		goto out;
	}
	curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
	if (status != 200) {
		snprintf(why, PROVIDER_WHY_MAX, "provider answered HTTP %ld", status);
		goto out;
	}
	rc = provider_parse(resp.data ? resp.data : "", resp.len, vec, dim, why);
	if (rc)
		rc = E(UNAVAILABLE);
out:
	pthread_mutex_lock(&p->lock);
	p->down_until = rc ? mono_s() + PROVIDER_COOLDOWN_S : 0;
	if (rc)
		snprintf(p->last_why, sizeof(p->last_why), "%.100s", why);
	pthread_mutex_unlock(&p->lock);
	curl_slist_free_all(h);
	curl_easy_cleanup(e);
	free(body);
	buf_release(&resp);
	return rc;
}
