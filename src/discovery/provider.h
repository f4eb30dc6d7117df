/*
 * The optional embeddings provider: any server of the OpenAI-compatible
 * `POST {url}` embeddings API (Ollama, llama.cpp server, vLLM, TEI,
 * OpenAI), set by the operator with --embeddings-url (the full endpoint,
 * e.g. http://127.0.0.1:11434/v1/embeddings), --embeddings-model and the
 * NEXRA_EMBEDDINGS_API_KEY variable (sent as a bearer token when set).
 *
 * The URL is the operator's, not a user's: loopback and private addresses
 * are allowed (a local model is the common case); redirects are not
 * followed and no proxy from the environment is used.
 *
 * A failed call opens a breaker for PROVIDER_COOLDOWN_S: calls in that
 * window fail at once, so request threads never wait on a provider known to
 * be down (discovery falls back to the built-in embedder and says so).
 */
#ifndef NEXRA_DISCOVERY_PROVIDER_H
#define NEXRA_DISCOVERY_PROVIDER_H

#include <stddef.h>
#include <stdint.h>

#define PROVIDER_DIM_MAX 8192
#define PROVIDER_RESPONSE_MAX (4 * 1024 * 1024)
#define PROVIDER_COOLDOWN_S 5
#define PROVIDER_WHY_MAX 160

struct provider;

/* 0 or E(INTERNAL); api_key may be NULL or "". Strings are copied. */
int provider_new(const char *url, const char *model, const char *api_key, struct provider **out);
void provider_free(struct provider *p);
const char *provider_model(const struct provider *p);

/* Embed text, waiting at most timeout_ms. On 0 *vec is malloc'd (caller
 * frees) with *dim floats. On failure E(UNAVAILABLE) and a reason in why
 * (PROVIDER_WHY_MAX bytes) for meta and logs. Thread-safe. */
int provider_embed(struct provider *p, const char *text, long timeout_ms, float **vec, int *dim,
		   char *why);

/* 0 while the breaker is open (a call would fail at once). */
int provider_available(struct provider *p);

/* Pure: the first embedding of an OpenAI-style response body
 * {"data":[{"embedding":[...]}]}. 0, or E(VALIDATION) with a reason. */
int provider_parse(const char *body, size_t len, float **vec, int *dim, char *why);

#endif
