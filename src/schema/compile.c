/*
 * Compiling a schema: JSON in, a graph of struct snode out.
 *
 * Order of work in schema_compile_flags():
 *   1. bound the document (SCHEMA_MAX_NODES values, SCHEMA_MAX_DEPTH deep);
 *   2. validate it against the draft-07 meta-schema (itself compiled once
 *      per process by schema_metaschema()); failures name the schema path;
 *   3. index it: walk every subschema position, note the base URI in force
 *      at each schema object and every "$id" (absolute ids and "#name"
 *      anchors alike) in a URI table. Per draft 7, "$id" next to "$ref" is
 *      ignored, and values under const/enum/unknown keywords are not
 *      subschemas, so an "$id" there identifies nothing;
 *   4. compile from the root. Each JSON value becomes exactly one snode
 *      (a pointer-keyed table maps json_t to node), so compiling follows the
 *      document's nesting only: a "$ref" is recorded as pending and resolved
 *      afterwards from a work list. That keeps the C stack bounded by the
 *      document depth however long a chain of references is, and a cycle of
 *      references is simply a cycle of node pointers.
 *
 * Resolution of a $ref: resolve it against the base URI (ref.c), look the
 * whole URI up in the table (anchors, ids), else split off the fragment,
 * find the document (the table again; the embedded meta-schema; or the
 * caller's registry, whose answer is bounded, meta-validated and indexed
 * like the root), and follow the fragment as a JSON pointer. Nothing here
 * touches the network.
 */
#include "schema/schema_int.h"

#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"

#include "core/banned.h"


#define EXACT_MAX 9007199254740992.0 /* 2^53: every integer up to it is a double */

/* An integer-valued JSON number of magnitude <= 2^53, as a double. */
static int exact_double(const json_t *m, double *out)
{
	double d;

	if (json_is_integer(m)) {
		json_int_t i = json_integer_value(m);

		if (i < -(json_int_t)EXACT_MAX || i > (json_int_t)EXACT_MAX)
			return 0;
		*out = (double)i;
		return 1;
	}
	d = json_real_value(m);
	if (d != d || d < -EXACT_MAX || d > EXACT_MAX || d != (double)(long long)d)
		return 0;
	*out = d;
	return 1;
}
static atomic_ulong compiles;

unsigned long schema_stat_compiles(void)
{
	return atomic_load(&compiles);
}

struct pent {
	const json_t *key;
	struct snode *node;
	const char *base; /* owned by cctx.strs */
};

struct uent {
	const char *uri; /* owned by cctx.strs */
	json_t *node;
};

struct pending {
	struct snode *node;
	const char *ref;  /* borrowed from the schema JSON */
	const char *base; /* owned by cctx.strs */
};

struct cctx {
	struct schema *s;
	const struct schema_registry *reg;
	struct schema_errors *errs;
	int meta; /* compiling the meta-schema itself: no meta check */

	struct pent *ptab;
	size_t pcap, pn;
	struct uent *uris;
	size_t nuris, capuris;
	char **strs;
	size_t nstrs, capstrs;
	struct pending *pend;
	size_t npend, cappend;

	char path[SCHEMA_PATH_MAX]; /* schema path, for messages */
};

static int cerr(struct cctx *c, const char *kw, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int cerr(struct cctx *c, const char *kw, const char *fmt, ...)
{
	struct schema_error *e;
	va_list ap;

	if (!c->errs)
		return E(VALIDATION);
	if (c->errs->count >= SCHEMA_MAX_ERRORS) {
		c->errs->truncated = 1;
		return E(VALIDATION);
	}
	e = &c->errs->items[c->errs->count++];
	snprintf(e->path, sizeof(e->path), "%s", c->path);
	snprintf(e->keyword, sizeof(e->keyword), "%s", kw);
	va_start(ap, fmt);
	vsnprintf(e->message, sizeof(e->message), fmt, ap);
	va_end(ap);
	return E(VALIDATION);
}

static void *grow(void *p, size_t *cap, size_t need, size_t elem)
{
	size_t ncap = *cap ? *cap * 2 : 16;
	void *np;

	if (need <= *cap)
		return p;
	while (ncap < need)
		ncap *= 2;
	np = realloc(p, ncap * elem);
	if (!np)
		return NULL;
	*cap = ncap;
	return np;
}

static const char *keep_str(struct cctx *c, const char *s)
{
	char *d;
	void *np = grow(c->strs, &c->capstrs, c->nstrs + 1, sizeof(*c->strs));

	if (!np)
		return NULL;
	c->strs = np;
	d = strdup(s);
	if (!d)
		return NULL;
	c->strs[c->nstrs++] = d;
	return d;
}

/* ---- pointer table: json_t -> (node, base) -------------------------------- */

static size_t phash(const json_t *k, size_t cap)
{
	uintptr_t x = (uintptr_t)k;

	x ^= x >> 17;
	x *= 0x9E3779B97F4A7C15ULL;
	return (size_t)(x >> 7) & (cap - 1);
}

static struct pent *pfind(struct cctx *c, const json_t *k, int create)
{
	size_t i;

	if (create && (c->pn + 1) * 2 > c->pcap) {
		size_t ncap = c->pcap ? c->pcap * 2 : 256;
		struct pent *ne = calloc(ncap, sizeof(*ne));

		if (!ne)
			return NULL;
		for (size_t j = 0; j < c->pcap; j++) {
			if (!c->ptab[j].key)
				continue;
			i = phash(c->ptab[j].key, ncap);
			while (ne[i].key)
				i = (i + 1) & (ncap - 1);
			ne[i] = c->ptab[j];
		}
		free(c->ptab);
		c->ptab = ne;
		c->pcap = ncap;
	}
	if (!c->pcap)
		return NULL;
	i = phash(k, c->pcap);
	while (c->ptab[i].key) {
		if (c->ptab[i].key == k)
			return &c->ptab[i];
		i = (i + 1) & (c->pcap - 1);
	}
	if (!create)
		return NULL;
	c->ptab[i].key = k;
	c->pn++;
	return &c->ptab[i];
}

/* ---- URI table ------------------------------------------------------------ */

/* "x#" names the same resource as "x". */
static void strip_empty_fragment(char *uri)
{
	size_t n = strlen(uri);

	if (n && uri[n - 1] == '#')
		uri[n - 1] = '\0';
}

static json_t *uri_find(struct cctx *c, const char *uri)
{
	for (size_t i = 0; i < c->nuris; i++)
		if (!strcmp(c->uris[i].uri, uri))
			return c->uris[i].node;
	return NULL;
}

static int uri_add(struct cctx *c, const char *uri, json_t *node)
{
	const char *k;
	void *np;

	if (uri_find(c, uri))
		return 0; /* first definition wins */
	np = grow(c->uris, &c->capuris, c->nuris + 1, sizeof(*c->uris));
	if (!np)
		return E(INTERNAL);
	c->uris = np;
	k = keep_str(c, uri);
	if (!k)
		return E(INTERNAL);
	c->uris[c->nuris].uri = k;
	c->uris[c->nuris].node = node;
	c->nuris++;
	return 0;
}

/* ---- bounds --------------------------------------------------------------- */

static int measure(const json_t *v, int depth, size_t *count)
{
	if (depth > SCHEMA_MAX_DEPTH || ++*count > SCHEMA_MAX_NODES)
		return E(TOO_LARGE);
	if (json_is_object(v)) {
		const char *k;
		json_t *m;

		json_object_foreach((json_t *)v, k, m) {
			int rc = measure(m, depth + 1, count);

			if (rc)
				return rc;
		}
	} else if (json_is_array(v)) {
		for (size_t i = 0; i < json_array_size(v); i++) {
			int rc = measure(json_array_get(v, i), depth + 1, count);

			if (rc)
				return rc;
		}
	}
	return 0;
}

static int check_document(struct cctx *c, const json_t *doc, const char *what)
{
	size_t count = 0;
	int rc = measure(doc, 0, &count);

	if (rc)
	{
		cerr(c, "schema", "%s is larger than %d values or deeper than %d levels", what,
		     SCHEMA_MAX_NODES, SCHEMA_MAX_DEPTH);
		return E(TOO_LARGE);
	}
	if (!c->meta) {
		const struct schema *meta = schema_metaschema();
		struct schema_errors tmp;

		if (!meta)
			return E(INTERNAL);
		schema_errors_init(&tmp);
		rc = schema_validate(meta, doc, c->errs ? &tmp : NULL);
		if (rc == E(VALIDATION) && c->errs) {
			for (size_t i = 0; i < tmp.count; i++) {
				char p[SCHEMA_PATH_MAX];

				snprintf(p, sizeof(p), "%s", tmp.items[i].path);
				snprintf(c->path, sizeof(c->path), "%s", p);
				cerr(c, tmp.items[i].keyword, "%s%s%s", tmp.items[i].message,
				     strcmp(what, "schema") ? " in " : "", strcmp(what, "schema") ? what : "");
			}
			c->path[0] = '\0';
			if (tmp.truncated)
				c->errs->truncated = 1;
		}
		if (rc)
			return rc;
	}
	return 0;
}

/* ---- indexing ------------------------------------------------------------- */

static const char *const schema_kw[] = {"additionalItems", "additionalProperties", "contains",
					"propertyNames", "not", "if", "then", "else", NULL};
static const char *const schema_map_kw[] = {"properties", "patternProperties", "definitions",
					    "dependencies", NULL};
static const char *const schema_list_kw[] = {"allOf", "anyOf", "oneOf", "items", NULL};

static int index_node(struct cctx *c, json_t *v, const char *base, int depth)
{
	struct pent *pe;
	json_t *id, *ref, *m;
	const char *k;
	int rc = 0;

	if (depth > SCHEMA_MAX_DEPTH)
		return E(TOO_LARGE);
	if (!json_is_object(v) && !json_is_boolean(v))
		return 0;
	pe = pfind(c, v, 1);
	if (!pe)
		return E(INTERNAL);
	if (pe->base)
		return 0; /* seen (a value shared between places) */
	pe->base = base;
	if (!json_is_object(v))
		return 0;
	id = json_object_get(v, "$id");
	ref = json_object_get(v, "$ref");
	if (json_is_string(id) && !json_is_string(ref)) {
		char full[SCHEMA_MAX_URI];
		char *hash;

		rc = suri_resolve(base, json_string_value(id), full, sizeof(full));
		if (rc)
			return cerr(c, "$id", "resolved $id is longer than %d bytes", SCHEMA_MAX_URI);
		strip_empty_fragment(full);
		rc = uri_add(c, full, v);
		if (rc)
			return rc;
		hash = strchr(full, '#');
		if (hash)
			*hash = '\0';
		if (!hash) {
			base = keep_str(c, full);
			if (!base)
				return E(INTERNAL);
			pe->base = base;
		}
	}
	for (int i = 0; schema_kw[i] && !rc; i++) {
		m = json_object_get(v, schema_kw[i]);
		if (m)
			rc = index_node(c, m, base, depth + 1);
	}
	for (int i = 0; schema_map_kw[i] && !rc; i++) {
		json_t *map = json_object_get(v, schema_map_kw[i]), *sub;

		if (!json_is_object(map))
			continue;
		json_object_foreach(map, k, sub) {
			rc = index_node(c, sub, base, depth + 2);
			if (rc)
				break;
		}
	}
	for (int i = 0; schema_list_kw[i] && !rc; i++) {
		m = json_object_get(v, schema_list_kw[i]);
		if (json_is_array(m)) {
			for (size_t j = 0; j < json_array_size(m) && !rc; j++)
				rc = index_node(c, json_array_get(m, j), base, depth + 2);
		} else if (m && !strcmp(schema_list_kw[i], "items")) {
			rc = index_node(c, m, base, depth + 1);
		}
	}
	return rc;
}

/* Takes over doc (a new reference) and indexes it under uri. */
static int add_document(struct cctx *c, json_t *doc, const char *uri)
{
	const char *base;
	json_t **nd;
	int rc;

	if (c->s->ndocs >= SCHEMA_MAX_DOCUMENTS) {
		json_decref(doc);
		cerr(c, "$ref", "more than %d documents referenced", SCHEMA_MAX_DOCUMENTS);
		return E(TOO_LARGE);
	}
	nd = realloc(c->s->docs, (c->s->ndocs + 1) * sizeof(*nd));
	if (!nd) {
		json_decref(doc);
		return E(INTERNAL);
	}
	c->s->docs = nd;
	c->s->docs[c->s->ndocs++] = doc;
	base = keep_str(c, uri);
	if (!base)
		return E(INTERNAL);
	rc = uri_add(c, uri, doc);
	return rc ? rc : index_node(c, doc, base, 0);
}

/* ---- compiling ------------------------------------------------------------ */

static struct snode *get_node(struct cctx *c, json_t *v, const char *base, int depth, int *rc);

static struct snode *new_node(struct cctx *c, json_t *v, const char *base)
{
	struct snode *n;
	struct pent *pe;

	if (c->s->nnodes >= SCHEMA_MAX_NODES)
		return NULL;
	if (c->s->nnodes == c->s->cap_nodes) {
		void *np = grow(c->s->nodes, &c->s->cap_nodes, c->s->nnodes + 1, sizeof(*c->s->nodes));

		if (!np)
			return NULL;
		c->s->nodes = np;
	}
	n = calloc(1, sizeof(*n));
	if (!n)
		return NULL;
	c->s->nodes[c->s->nnodes++] = n;
	pe = pfind(c, v, 1);
	if (!pe)
		return NULL;
	pe->node = n;
	if (!pe->base)
		pe->base = base;
	n->boolean = -1;
	n->min_length = n->max_length = -1;
	n->min_items = n->max_items = -1;
	n->min_props = n->max_props = -1;
	return n;
}

static long long as_count(const json_t *v)
{
	struct sdec d;
	long long x = 0;

	if (sdec_from_json(v, &d) || d.neg)
		return 0;
	if (d.ndigits + d.exp > 18)
		return LLONG_MAX;
	for (int i = 0; i < d.ndigits; i++)
		x = x * 10 + (d.digits[i] - '0');
	for (int i = 0; i < d.exp; i++)
		x *= 10;
	return x;
}

static unsigned type_bit(const char *t)
{
	static const struct {
		const char *name;
		unsigned bit;
	} tab[] = {{"null", ST_NULL},     {"boolean", ST_BOOLEAN}, {"object", ST_OBJECT},
		   {"array", ST_ARRAY},   {"number", ST_NUMBER | ST_INTEGER},
		   {"string", ST_STRING}, {"integer", ST_INTEGER}};

	for (size_t i = 0; i < sizeof(tab) / sizeof(tab[0]); i++)
		if (!strcmp(tab[i].name, t))
			return tab[i].bit;
	return 0;
}

/* Compile sub (the value of keyword kw, or of kw/seg) into *out. */
static int sub(struct cctx *c, json_t *v, const char *base, int depth, const char *kw,
	       const char *seg, struct snode **out)
{
	size_t l1 = sptr_push(c->path, sizeof(c->path), kw), l2 = 0;
	int rc = 0;

	if (seg)
		l2 = sptr_push(c->path, sizeof(c->path), seg);
	*out = get_node(c, v, base, depth + 1, &rc);
	if (seg)
		c->path[l2] = '\0';
	if (!rc)
		c->path[l1] = '\0';
	return rc;
}

static int sub_list(struct cctx *c, json_t *arr, const char *base, int depth, const char *kw,
		    struct snode ***out, size_t *n)
{
	size_t cnt = json_array_size(arr);
	int rc = 0;

	*n = 0;
	*out = calloc(cnt ? cnt : 1, sizeof(**out));
	if (!*out)
		return E(INTERNAL);
	for (size_t i = 0; i < cnt && !rc; i++) {
		char seg[24];

		snprintf(seg, sizeof(seg), "%zu", i);
		rc = sub(c, json_array_get(arr, i), base, depth, kw, seg, &(*out)[i]);
		if (!rc)
			(*n)++;
	}
	return rc;
}

/* Property names are hashed on every instance member that is not the
 * expected next property: eight bytes at a time (multiply and fold), the
 * tail as one more (overlapping) load, never byte by byte. */
uint32_t schema_name_hash(const char *s, size_t len)
{
	uint64_t h = 0x9e3779b97f4a7c15ull ^ len, w = 0;
	size_t rest = len;
	uint32_t lo, hi;

	for (; rest >= 8; s += 8, rest -= 8) {
		memcpy(&w, s, 8);
		h = (h ^ w) * 0xff51afd7ed558ccdull;
		h ^= h >> 32;
	}
	if (rest && len >= 8) { /* the last eight bytes, overlapping */
		memcpy(&w, s + rest - 8, 8);
	} else if (rest >= 4) {
		memcpy(&lo, s, 4);
		memcpy(&hi, s + rest - 4, 4);
		w = lo | (uint64_t)hi << 32;
	} else if (rest) {
		w = (uint64_t)(unsigned char)s[0] | (uint64_t)(unsigned char)s[rest / 2] << 8 |
		    (uint64_t)(unsigned char)s[rest - 1] << 16;
	}
	h = (h ^ w) * 0xc4ceb9fe1a85ec53ull;
	h ^= h >> 29;
	return (uint32_t)h;
}

static struct sslot *name_slot(struct snode *n, const char *name, size_t len)
{
	uint32_t h = schema_name_hash(name, len), i = h & n->names_mask;

	while (n->names[i].name) {
		if (n->names[i].hash == h && n->names[i].len == len &&
		    !memcmp(n->names[i].name, name, len))
			return &n->names[i];
		i = (i + 1) & n->names_mask;
	}
	n->names[i].name = name;
	n->names[i].len = len;
	n->names[i].hash = h;
	n->names[i].prop = -1;
	n->names[i].req = -1;
	return &n->names[i];
}

/* The member-name table of an object schema (see struct sslot). */
static int build_names(struct snode *n)
{
	size_t count = n->nprops + n->nrequired, cap = 8;

	if (count == 0)
		return 0;
	while (cap < count * 2)
		cap *= 2;
	n->names = calloc(cap, sizeof(*n->names));
	if (!n->names)
		return E(INTERNAL);
	n->names_mask = (uint32_t)(cap - 1);
	for (size_t i = 0; i < n->nprops; i++) {
		struct sslot *slot = name_slot(n, n->props[i].name, n->props[i].len);

		slot->prop = (int)i;
		n->props[i].slot = slot;
	}
	n->required_in_table = n->nrequired <= 64;
	for (size_t i = 0; i < n->nrequired && n->required_in_table; i++)
		name_slot(n, n->required[i], strlen(n->required[i]))->req = (int)i;
	return 0;
}

/* enum: the values stay in the schema JSON (deep equality); when all are
 * strings, their bytes and lengths are noted for a plain comparison. */
static int compile_enum(struct snode *n, json_t *m)
{
	size_t cnt = json_array_size(m);

	n->enum_values = m;
	n->flags |= SK_ENUM;
	n->enum_strings = 1;
	for (size_t i = 0; i < cnt; i++)
		n->enum_strings &= json_is_string(json_array_get(m, i));
	if (!n->enum_strings)
		return 0;
	n->enum_strs = calloc(cnt ? cnt : 1, sizeof(*n->enum_strs));
	if (!n->enum_strs)
		return E(INTERNAL);
	for (size_t i = 0; i < cnt; i++) {
		n->enum_strs[i].s = json_string_value(json_array_get(m, i));
		n->enum_strs[i].len = json_string_length(json_array_get(m, i));
	}
	return 0;
}

static int compile_object(struct cctx *c, struct snode *n, json_t *v, const char *base, int depth)
{
	json_t *m, *x;
	const char *k;
	int rc = 0;

	m = json_object_get(v, "$ref");
	if (json_is_string(m)) {
		void *np = grow(c->pend, &c->cappend, c->npend + 1, sizeof(*c->pend));

		if (!np)
			return E(INTERNAL);
		c->pend = np;
		c->pend[c->npend].node = n;
		c->pend[c->npend].ref = json_string_value(m);
		c->pend[c->npend].base = base;
		c->npend++;
		n->ref_text = json_string_value(m);
		return 0; /* draft 7: every sibling of $ref is ignored */
	}
	/* "$id" was applied while indexing: base is already this node's. */
	m = json_object_get(v, "type");
	if (json_is_string(m)) {
		n->types = type_bit(json_string_value(m));
	} else if (json_is_array(m)) {
		for (size_t i = 0; i < json_array_size(m); i++)
			n->types |= type_bit(json_string_value(json_array_get(m, i)) ?
					     json_string_value(json_array_get(m, i)) : "");
	}
	if (m)
		n->flags |= SK_TYPE;

	static const struct {
		const char *kw;
		size_t off;
		unsigned flag;
	} nums[] = {
		{"minimum", offsetof(struct snode, minimum), SK_MINIMUM},
		{"maximum", offsetof(struct snode, maximum), SK_MAXIMUM},
		{"exclusiveMinimum", offsetof(struct snode, xminimum), SK_XMINIMUM},
		{"exclusiveMaximum", offsetof(struct snode, xmaximum), SK_XMAXIMUM},
		{"multipleOf", offsetof(struct snode, multiple), SK_MULTIPLE},
	};
	for (size_t i = 0; i < sizeof(nums) / sizeof(nums[0]); i++) {
		m = json_object_get(v, nums[i].kw);
		if (m && !sdec_from_json(m, (struct sdec *)((char *)n + nums[i].off))) {
			n->flags |= nums[i].flag | SK_ANYNUMBER;
			if (i < 4 && exact_double(m, &n->bound_d[i]))
				n->bounds_exact |= 1u << i;
			if (i == 4 && !sdec_parts(&n->multiple, &n->mult_b, &n->mult_q))
				n->flags |= SK_MULTFAST;
		}
	}

	m = json_object_get(v, "minLength");
	if (m) {
		n->min_length = as_count(m);
		n->flags |= SK_ANYSTRING;
	}
	m = json_object_get(v, "maxLength");
	if (m) {
		n->max_length = as_count(m);
		n->flags |= SK_ANYSTRING;
	}
	m = json_object_get(v, "pattern");
	if (json_is_string(m)) {
		char err[160];

		rc = sregex_compile(&n->pattern, json_string_value(m), json_string_length(m), err,
				    sizeof(err));
		if (rc) {
			size_t l = sptr_push(c->path, sizeof(c->path), "pattern");

			cerr(c, "pattern", "%s", err);
			c->path[l] = '\0';
			return rc;
		}
		n->has_pattern = 1;
		n->pattern_source = json_string_value(m);
		n->flags |= SK_ANYSTRING;
		c->s->uses_regex = 1;
	}
	m = json_object_get(v, "format");
	if (json_is_string(m) && (c->s->flags & SCHEMA_FORMAT_ASSERT)) {
		n->format = sformat_lookup(json_string_value(m));
		n->format_name = json_string_value(m);
		if (n->format != SFMT_NONE)
			n->flags |= SK_ANYSTRING;
	}

	m = json_object_get(v, "items");
	if (json_is_array(m)) {
		n->items_is_array = 1;
		rc = sub_list(c, m, base, depth, "items", &n->items_array, &n->nitems);
		n->flags |= SK_ANYARRAY;
	} else if (m) {
		rc = sub(c, m, base, depth, "items", NULL, &n->items);
		n->flags |= SK_ANYARRAY;
	}
	if (rc)
		return rc;
	m = json_object_get(v, "additionalItems");
	if (m && n->items_is_array) {
		rc = sub(c, m, base, depth, "additionalItems", NULL, &n->additional_items);
		if (rc)
			return rc;
	}
	m = json_object_get(v, "contains");
	if (m) {
		rc = sub(c, m, base, depth, "contains", NULL, &n->contains);
		if (rc)
			return rc;
		n->flags |= SK_ANYARRAY;
	}
	m = json_object_get(v, "minItems");
	if (m) {
		n->min_items = as_count(m);
		n->flags |= SK_ANYARRAY;
	}
	m = json_object_get(v, "maxItems");
	if (m) {
		n->max_items = as_count(m);
		n->flags |= SK_ANYARRAY;
	}
	if (json_is_true(json_object_get(v, "uniqueItems")))
		n->flags |= SK_UNIQUE | SK_ANYARRAY;

	m = json_object_get(v, "minProperties");
	if (m) {
		n->min_props = as_count(m);
		n->flags |= SK_ANYOBJECT;
	}
	m = json_object_get(v, "maxProperties");
	if (m) {
		n->max_props = as_count(m);
		n->flags |= SK_ANYOBJECT;
	}
	m = json_object_get(v, "required");
	if (json_is_array(m) && json_array_size(m)) {
		n->required = calloc(json_array_size(m), sizeof(*n->required));
		if (!n->required)
			return E(INTERNAL);
		for (size_t i = 0; i < json_array_size(m); i++)
			if (json_is_string(json_array_get(m, i)))
				n->required[n->nrequired++] = json_string_value(json_array_get(m, i));
		n->flags |= SK_ANYOBJECT;
	}
	m = json_object_get(v, "properties");
	if (json_is_object(m)) {
		n->props = calloc(json_object_size(m) + 1, sizeof(*n->props));
		if (!n->props)
			return E(INTERNAL);
		json_object_foreach(m, k, x) {
			struct sprop *p = &n->props[n->nprops];

			p->name = k;
			p->len = json_object_iter_key_len(json_object_key_to_iter(k));
			rc = sub(c, x, base, depth, "properties", k, &p->node);
			if (rc)
				return rc;
			n->nprops++;
		}
		n->flags |= SK_ANYOBJECT;
	}
	rc = build_names(n);
	if (rc)
		return rc;
	m = json_object_get(v, "patternProperties");
	if (json_is_object(m)) {
		n->pattern_props = calloc(json_object_size(m) + 1, sizeof(*n->pattern_props));
		if (!n->pattern_props)
			return E(INTERNAL);
		json_object_foreach(m, k, x) {
			struct spattern *p = &n->pattern_props[n->npattern_props];
			char err[160];

			rc = sregex_compile(&p->re, k, strlen(k), err, sizeof(err));
			if (rc) {
				size_t l = sptr_push(c->path, sizeof(c->path), "patternProperties");

				sptr_push(c->path, sizeof(c->path), k);
				cerr(c, "patternProperties", "%s", err);
				c->path[l] = '\0';
				return rc;
			}
			n->npattern_props++;
			p->source = k;
			c->s->uses_regex = 1;
			rc = sub(c, x, base, depth, "patternProperties", k, &p->node);
			if (rc)
				return rc;
		}
		n->flags |= SK_ANYOBJECT;
	}
	m = json_object_get(v, "additionalProperties");
	if (m) {
		rc = sub(c, m, base, depth, "additionalProperties", NULL, &n->additional_props);
		if (rc)
			return rc;
		n->flags |= SK_ANYOBJECT;
	}
	m = json_object_get(v, "dependencies");
	if (json_is_object(m)) {
		n->deps = calloc(json_object_size(m) + 1, sizeof(*n->deps));
		if (!n->deps)
			return E(INTERNAL);
		json_object_foreach(m, k, x) {
			struct sdep *d = &n->deps[n->ndeps];

			d->name = k;
			if (json_is_array(x)) {
				d->names = calloc(json_array_size(x) + 1, sizeof(*d->names));
				if (!d->names)
					return E(INTERNAL);
				for (size_t i = 0; i < json_array_size(x); i++)
					if (json_is_string(json_array_get(x, i)))
						d->names[d->nnames++] = json_string_value(json_array_get(x, i));
			} else {
				rc = sub(c, x, base, depth, "dependencies", k, &d->node);
				if (rc)
					return rc;
			}
			n->ndeps++;
		}
		n->flags |= SK_ANYOBJECT;
	}
	m = json_object_get(v, "propertyNames");
	if (m) {
		rc = sub(c, m, base, depth, "propertyNames", NULL, &n->property_names);
		if (rc)
			return rc;
		n->flags |= SK_ANYOBJECT;
	}

	m = json_object_get(v, "const");
	if (m) {
		n->const_value = m;
		n->flags |= SK_CONST;
	}
	m = json_object_get(v, "enum");
	if (json_is_array(m)) {
		rc = compile_enum(n, m);
		if (rc)
			return rc;
	}
	m = json_object_get(v, "allOf");
	if (json_is_array(m))
		rc = sub_list(c, m, base, depth, "allOf", &n->all_of, &n->nall_of);
	if (rc)
		return rc;
	m = json_object_get(v, "anyOf");
	if (json_is_array(m))
		rc = sub_list(c, m, base, depth, "anyOf", &n->any_of, &n->nany_of);
	if (rc)
		return rc;
	m = json_object_get(v, "oneOf");
	if (json_is_array(m))
		rc = sub_list(c, m, base, depth, "oneOf", &n->one_of, &n->none_of);
	if (rc)
		return rc;
	m = json_object_get(v, "not");
	if (m) {
		n->flags |= SK_APPLY;
		rc = sub(c, m, base, depth, "not", NULL, &n->not_);
		if (rc)
			return rc;
	}
	m = json_object_get(v, "if");
	if (m) {
		n->flags |= SK_APPLY;
		rc = sub(c, m, base, depth, "if", NULL, &n->if_);
		x = json_object_get(v, "then");
		if (!rc && x)
			rc = sub(c, x, base, depth, "then", NULL, &n->then_);
		x = json_object_get(v, "else");
		if (!rc && x)
			rc = sub(c, x, base, depth, "else", NULL, &n->else_);
	}
	if (n->nall_of || n->nany_of || n->none_of)
		n->flags |= SK_APPLY;
	if (!(n->flags & (SK_APPLY | SK_ANYARRAY | SK_ANYOBJECT)))
		n->flags |= SK_LEAF;
	return rc;
}

static struct snode *get_node(struct cctx *c, json_t *v, const char *base, int depth, int *rc)
{
	struct pent *pe = pfind(c, v, 0);
	struct snode *n;

	if (pe && pe->node)
		return pe->node;
	if (depth > SCHEMA_MAX_DEPTH) {
		cerr(c, "schema", "schema nested deeper than %d levels", SCHEMA_MAX_DEPTH);
		*rc = E(TOO_LARGE);
		return NULL;
	}
	if (pe && pe->base)
		base = pe->base;
	n = new_node(c, v, base);
	if (!n) {
		*rc = c->s->nnodes >= SCHEMA_MAX_NODES ? E(TOO_LARGE) : E(INTERNAL);
		return NULL;
	}
	if (json_is_boolean(v)) {
		n->boolean = json_is_true(v);
		return n;
	}
	if (!json_is_object(v)) {
		*rc = cerr(c, "schema", "a schema must be an object or a boolean, got %s",
			   json_is_array(v) ? "array" : json_is_string(v) ? "string" :
			   json_is_null(v) ? "null" : "number");
		return NULL;
	}
	*rc = compile_object(c, n, v, base, depth);
	return n;
}

static int resolve_one(struct cctx *c, struct pending *p)
{
	char full[SCHEMA_MAX_URI], doc_uri[SCHEMA_MAX_URI];
	const char *frag = "";
	char *hash;
	json_t *doc, *target;
	struct pent *pe;
	const char *tbase;
	int rc = 0;

	if (suri_resolve(p->base, p->ref, full, sizeof(full)))
		return cerr(c, "$ref", "$ref \"%.100s\" resolves to a URI longer than %d bytes",
			    p->ref, SCHEMA_MAX_URI);
	strip_empty_fragment(full);
	target = uri_find(c, full);
	snprintf(doc_uri, sizeof(doc_uri), "%s", full);
	hash = strchr(doc_uri, '#');
	if (hash) {
		*hash = '\0';
		frag = full + (hash - doc_uri) + 1;
	}
	if (!target) {
		doc = uri_find(c, doc_uri);
		if (!doc && (!strcmp(doc_uri, schema_metaschema_uri))) {
			json_error_t jerr;
			json_t *meta = json_loads(schema_metaschema_text, 0, &jerr);

			if (!meta)
				return E(INTERNAL);
			rc = add_document(c, meta, doc_uri);
			if (rc)
				return rc;
			doc = uri_find(c, doc_uri);
		} else if (!doc && c->reg && c->reg->lookup && doc_uri[0]) {
			json_t *remote = NULL;

			rc = c->reg->lookup(c->reg->ctx, doc_uri, &remote);
			if (rc || !remote) {
				json_decref(remote);
				return cerr(c, "$ref", "cannot resolve $ref \"%.100s\": no schema %.100s is registered",
					    p->ref, doc_uri);
			}
			rc = check_document(c, remote, doc_uri);
			if (rc) {
				json_decref(remote);
				return rc;
			}
			rc = add_document(c, remote, doc_uri);
			if (rc)
				return rc;
			doc = uri_find(c, doc_uri);
		}
		if (!doc)
			return cerr(c, "$ref", "cannot resolve $ref \"%.100s\"", p->ref);
		target = frag[0] ? sptr_eval(doc, frag) : doc;
		if (!target)
			return cerr(c, "$ref", "$ref \"%.100s\" points nowhere", p->ref);
	}
	pe = pfind(c, target, 0);
	tbase = pe && pe->base ? pe->base : keep_str(c, doc_uri);
	if (!tbase)
		return E(INTERNAL);
	p->node->ref = get_node(c, target, tbase, 0, &rc);
	return rc;
}

static void node_free(struct snode *n)
{
	sregex_release(&n->pattern);
	free(n->items_array);
	free(n->required);
	free(n->props);
	free(n->names);
	free(n->enum_strs);
	for (size_t i = 0; i < n->npattern_props; i++)
		sregex_release(&n->pattern_props[i].re);
	free(n->pattern_props);
	for (size_t i = 0; i < n->ndeps; i++)
		free(n->deps[i].names);
	free(n->deps);
	free(n->all_of);
	free(n->any_of);
	free(n->one_of);
	free(n);
}

void schema_free(struct schema *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->nnodes; i++)
		node_free(s->nodes[i]);
	free(s->nodes);
	for (size_t i = 0; i < s->ndocs; i++)
		json_decref(s->docs[i]);
	free(s->docs);
	pcre2_match_context_free(s->mctx);
	s->magic = 0;
	free(s);
}

static int compile_internal(const json_t *schema, const struct schema_registry *reg,
			    unsigned flags, int meta, struct schema **out,
			    struct schema_errors *errs)
{
	struct cctx c;
	int rc;

	memset(&c, 0, sizeof(c));
	*out = NULL;
	if (errs)
		schema_errors_init(errs);
	c.reg = reg;
	c.errs = errs;
	c.meta = meta;
	if (!schema) {
		rc = cerr(&c, "schema", "no schema");
		goto out;
	}
	rc = check_document(&c, schema, "schema");
	if (rc)
		goto out;
	c.s = calloc(1, sizeof(*c.s));
	if (!c.s) {
		rc = E(INTERNAL);
		goto out;
	}
	c.s->magic = SCHEMA_MAGIC;
	c.s->flags = flags;
	rc = add_document(&c, json_incref((json_t *)schema), "");
	if (rc)
		goto out;
	c.s->root = get_node(&c, (json_t *)schema, "", 0, &rc);
	/* resolving may add pending refs (and move c.pend): work on copies */
	for (size_t i = 0; i < c.npend && !rc; i++) {
		struct pending p = c.pend[i];

		rc = resolve_one(&c, &p);
	}
	if (rc)
		goto out;
	if (c.s->uses_regex) {
		c.s->mctx = pcre2_match_context_create(NULL);
		if (!c.s->mctx) {
			rc = E(INTERNAL);
			goto out;
		}
		pcre2_set_match_limit(c.s->mctx, SCHEMA_REGEX_MATCH_LIMIT);
		pcre2_set_depth_limit(c.s->mctx, SCHEMA_REGEX_DEPTH_LIMIT);
		pcre2_set_heap_limit(c.s->mctx, 4096); /* KiB */
	}
	atomic_fetch_add(&compiles, 1);
	*out = c.s;
	c.s = NULL;
out:
	schema_free(c.s);
	for (size_t i = 0; i < c.nstrs; i++)
		free(c.strs[i]);
	free(c.strs);
	free(c.ptab);
	free(c.uris);
	free(c.pend);
	if (rc && rc != E(TOO_LARGE) && rc != E(INTERNAL))
		rc = E(VALIDATION);
	return rc;
}

int schema_compile_flags(const json_t *schema, const struct schema_registry *reg, unsigned flags,
			 struct schema **out, struct schema_errors *errs)
{
	return compile_internal(schema, reg, flags, 0, out, errs);
}

int schema_compile(const json_t *schema, const struct schema_registry *reg, struct schema **out,
		   struct schema_errors *errs)
{
	return compile_internal(schema, reg, 0, 0, out, errs);
}

static pthread_once_t meta_once = PTHREAD_ONCE_INIT;
static struct schema *meta_schema;

static void meta_init(void)
{
	json_error_t jerr;
	json_t *doc = json_loads(schema_metaschema_text, 0, &jerr);

	if (!doc)
		return;
	if (compile_internal(doc, NULL, 0, 1, &meta_schema, NULL))
		meta_schema = NULL;
	json_decref(doc);
}

const struct schema *schema_metaschema(void)
{
	pthread_once(&meta_once, meta_init);
	return meta_schema;
}
