/*
 * Validating an instance against a compiled schema.
 *
 * One recursive walk, v_node(), over the snode graph and the instance in
 * step. It returns 0 (valid here) or 1 (invalid here). Failures are
 * recorded with the instance path as they are found, all of them up to
 * SCHEMA_MAX_ERRORS, except under applicators that only need a yes or no
 * (anyOf, oneOf, not, if, contains, propertyNames): there the walk is
 * "quiet", records nothing and stops at the first failure, and the
 * applicator reports one failure of its own. Without an error list the
 * whole walk is quiet, which is the fast path.
 *
 * Bounds, all checked on the way down so nothing can run away:
 *   - instance nesting   SCHEMA_MAX_INSTANCE_DEPTH,
 *   - schema applications in progress (the C stack)  SCHEMA_MAX_EVAL_DEPTH,
 *   - $ref loops: a $ref that re-enters the same target at the same
 *     instance value, with nothing consumed in between, would recurse
 *     forever ({"$ref": "#"} at the root, or A -> B -> A); it is detected
 *     by scanning the $refs in progress,
 *   - regex run time: the schema's PCRE2 match context.
 * Hitting a bound is "fatal": it is recorded even under a quiet applicator
 * (so that a `not` cannot turn it into a pass) and the instance is invalid.
 *
 * Instance paths are built in place in one buffer (push a segment, recurse,
 * truncate), so a valid instance costs no formatting at all.
 *
 * The success path is what runs for every task, so it is kept lean with
 * what compile.c prepared (see docs/schema.md, "Speed"):
 *   - object members are matched to "properties" by trying the property
 *     after the last one found (instances mostly follow the schema's order)
 *     before the hashed name table;
 *   - SK_LEAF nodes (no $ref, applicator, array or object keyword) go
 *     from the member and item loops straight to their keywords, without
 *     v_node's boolean, $ref and depth bookkeeping;
 *   - const/enum and applicators are skipped by one flag test each;
 *   - numbers pass on doubles (integral bounds) and on integer parts
 *     (multipleOf) when that is exact; the decimal path decides otherwise;
 *   - everything that formats a message is out of line.
 */
#include "schema/schema_int.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"

#include "core/banned.h"

/* The success path of a member or an item (v_child, v_keywords and the
 * type, number and string checks under them) is inlined into the member
 * and item loops whatever GCC's size heuristics say: left to them at -O2
 * it was not, at a cost of about 10% of a validation (callgrind). What
 * formats a message, and the rarer keywords, stay out of line so that
 * path stays small. */
#define ALWAYS_INLINE static inline __attribute__((always_inline))
#define NOINLINE static __attribute__((noinline))

struct refframe {
	const struct snode *target;
	const json_t *inst;
};

/* One step of the instance path: a member name or an array index. The
 * path is kept as these steps and only rendered when a failure is recorded,
 * so a valid instance costs no formatting. */
struct pseg {
	const char *key; /* NULL for an index */
	size_t len;      /* key length, or the index */
};

#define SEG_MAX (SCHEMA_MAX_INSTANCE_DEPTH + 4)

struct vctx {
	const struct schema *s;
	struct schema_errors *errs; /* NULL: stop at the first failure */
	int quiet;
	int fatal;
	int depth;
	pcre2_match_data *md;
	int nomem;
	size_t nsegs;
	size_t nrefs;
	struct pseg segs[SEG_MAX];
	struct refframe refs[SCHEMA_MAX_EVAL_DEPTH];
};

void schema_errors_init(struct schema_errors *errs)
{
	errs->count = 0;
	errs->truncated = 0;
}

void schema_error_format(const struct schema_error *e, char *out, size_t outsz)
{
	snprintf(out, outsz, "%s: %s (%s)", e->path[0] ? e->path : "/", e->message, e->keyword);
}

static void render_path(const struct vctx *c, char *out, size_t outsz)
{
	out[0] = '\0';
	for (size_t i = 0; i < c->nsegs; i++) {
		if (c->segs[i].key) {
			sptr_push(out, outsz, c->segs[i].key);
		} else {
			sptr_push_index(out, outsz, c->segs[i].len);
		}
	}
}

static int record(struct vctx *c, const char *kw, const char *fmt, va_list ap)
{
	struct schema_error *e;

	if (!c->errs)
		return 1;
	if (c->errs->count >= SCHEMA_MAX_ERRORS) {
		c->errs->truncated = 1;
		return 1;
	}
	e = &c->errs->items[c->errs->count++];
	render_path(c, e->path, sizeof(e->path));
	snprintf(e->keyword, sizeof(e->keyword), "%s", kw);
	vsnprintf(e->message, sizeof(e->message), fmt, ap);
	return 1;
}

static int fail(struct vctx *c, const char *kw, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(struct vctx *c, const char *kw, const char *fmt, ...)
{
	va_list ap;

	if (c->quiet || !c->errs)
		return 1;
	va_start(ap, fmt);
	record(c, kw, fmt, ap);
	va_end(ap);
	return 1;
}

/* A bound was hit: recorded even when quiet, and the walk unwinds. */
static int fatal(struct vctx *c, const char *kw, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fatal(struct vctx *c, const char *kw, const char *fmt, ...)
{
	va_list ap;

	if (c->fatal)
		return 1;
	c->fatal = 1;
	va_start(ap, fmt);
	record(c, kw, fmt, ap);
	va_end(ap);
	return 1;
}

/* Stop collecting: quiet, no list, a bound hit, or one failure found past
 * a full list (which marks it truncated). */
static int done(const struct vctx *c)
{
	return c->fatal || c->quiet || !c->errs || c->errs->truncated;
}

/* Member names are used as C strings in paths (a NUL inside a name ends
 * it there: a cosmetic limit of messages only). */
static size_t push(struct vctx *c, const char *seg, size_t seglen)
{
	size_t old = c->nsegs;

	if (old < SEG_MAX) {
		c->segs[old].key = seg;
		c->segs[old].len = seglen;
		c->nsegs = old + 1;
	}
	return old;
}

static size_t push_index(struct vctx *c, size_t i)
{
	size_t old = c->nsegs;

	if (old < SEG_MAX) {
		c->segs[old].key = NULL;
		c->segs[old].len = i;
		c->nsegs = old + 1;
	}
	return old;
}

static void pop(struct vctx *c, size_t old)
{
	c->nsegs = old;
}

static const char *type_name(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		return "object";
	case JSON_ARRAY:
		return "array";
	case JSON_STRING:
		return "string";
	case JSON_INTEGER:
	case JSON_REAL:
		return "number";
	case JSON_TRUE:
	case JSON_FALSE:
		return "boolean";
	default:
		return "null";
	}
}

ALWAYS_INLINE unsigned type_of(const json_t *v)
{
	static const unsigned bits[] = {
		[JSON_OBJECT] = ST_OBJECT,
		[JSON_ARRAY] = ST_ARRAY,
		[JSON_STRING] = ST_STRING,
		[JSON_INTEGER] = ST_INTEGER | ST_NUMBER,
		[JSON_TRUE] = ST_BOOLEAN,
		[JSON_FALSE] = ST_BOOLEAN,
		[JSON_NULL] = ST_NULL,
	};
	json_type jt = json_typeof(v);

	if (jt == JSON_REAL) {
		double d = json_real_value(v);

		/* draft 7: a number with a zero fractional part is an integer
		 * (every double this large is integral) */
		if (d > 9.2e18 || d < -9.2e18 || d == (double)(long long)d)
			return ST_INTEGER | ST_NUMBER;
		return ST_NUMBER;
	}
	return (unsigned)jt < sizeof(bits) / sizeof(bits[0]) ? bits[jt] : ST_NULL;
}

static void type_list(unsigned t, char *out, size_t outsz)
{
	static const struct {
		unsigned bit;
		const char *name;
	} tab[] = {{ST_OBJECT, "object"}, {ST_ARRAY, "array"},   {ST_STRING, "string"},
		   {ST_NUMBER, "number"}, {ST_INTEGER, "integer"}, {ST_BOOLEAN, "boolean"},
		   {ST_NULL, "null"}};
	size_t o = 0;
	int first = 1;

	out[0] = '\0';
	if (t & ST_NUMBER)
		t &= ~ST_INTEGER;
	for (size_t i = 0; i < sizeof(tab) / sizeof(tab[0]); i++) {
		int n;

		if (!(t & tab[i].bit))
			continue;
		n = snprintf(out + o, outsz - o, "%s%s", first ? "" : " or ", tab[i].name);
		if (n < 0 || (size_t)n >= outsz - o)
			break;
		o += (size_t)n;
		first = 0;
	}
	if (first)
		snprintf(out, outsz, "nothing");
}

static size_t utf8_length(const char *s, size_t n)
{
	size_t count = 0;

	for (size_t i = 0; i < n; i++)
		count += ((unsigned char)s[i] & 0xC0) != 0x80;
	return count;
}

static int v_node(struct vctx *c, const struct snode *n, const json_t *inst, int idepth);
ALWAYS_INLINE int v_child(struct vctx *c, const struct snode *n, const json_t *inst, int idepth);

/* Validate quietly: 1 when inst is valid against n. */
static int matches(struct vctx *c, const struct snode *n, const json_t *inst, int idepth)
{
	int bad;

	c->quiet++;
	bad = v_node(c, n, inst, idepth);
	c->quiet--;
	return !bad;
}

/* One PCRE2 match data per thread, made on first use and freed when the
 * thread exits: a malloc per validation was a measurable share of it. */
static pthread_key_t md_key;
static pthread_once_t md_once = PTHREAD_ONCE_INIT;
static int md_key_ok;

static void md_free(void *p)
{
	pcre2_match_data_free(p);
}

static void md_init(void)
{
	md_key_ok = pthread_key_create(&md_key, md_free) == 0;
}

static pcre2_match_data *thread_md(void)
{
	pcre2_match_data *md;

	pthread_once(&md_once, md_init);
	if (!md_key_ok)
		return NULL;
	md = pthread_getspecific(md_key);
	if (md)
		return md;
	md = pcre2_match_data_create(1, NULL);
	if (md && pthread_setspecific(md_key, md)) {
		pcre2_match_data_free(md);
		md = NULL;
	}
	return md;
}

static int regex_match(struct vctx *c, const struct sregex *re, const char *src, const char *s,
		       size_t len, const char *kw)
{
	int m;

	if (!c->md) {
		c->md = thread_md();
		if (!c->md) {
			c->nomem = 1;
			return fatal(c, kw, "out of memory"), -1;
		}
	}
	m = sregex_match(re, s, len, c->md, c->s->mctx);
	if (m < 0) {
		fatal(c, kw, "pattern %.80s exceeded the regular expression match limit", src);
		return -1;
	}
	return m;
}

/* All bounds of n passed, decided on doubles (see bounds_exact); 0 when
 * the exact decimal path must decide (or report a failure). */
ALWAYS_INLINE int bounds_pass_fast(const struct snode *n, const json_t *inst)
{
	unsigned want = 0;
	double x;

	want |= (n->flags & SK_MINIMUM) ? 1u : 0;
	want |= (n->flags & SK_MAXIMUM) ? 2u : 0;
	want |= (n->flags & SK_XMINIMUM) ? 4u : 0;
	want |= (n->flags & SK_XMAXIMUM) ? 8u : 0;
	if (!want)
		return 1;
	if ((n->bounds_exact & want) != want)
		return 0;
	if (json_is_integer(inst)) {
		json_int_t i = json_integer_value(inst);

		if (i < -9007199254740992LL || i > 9007199254740992LL)
			return 0;
		x = (double)i;
	} else {
		x = json_real_value(inst);
		if (x != x || x - x != 0) /* NaN or infinite */
			return 0;
	}
	return !((want & 1) && x < n->bound_d[0]) && !((want & 2) && x > n->bound_d[1]) &&
	       !((want & 4) && x <= n->bound_d[2]) && !((want & 8) && x >= n->bound_d[3]);
}

/* multipleOf passed, decided on the instance's decimal parts without digit
 * strings; 0 when the exact decimal path must decide (or report). */
ALWAYS_INLINE int multiple_pass_fast(const struct snode *n, const json_t *inst)
{
	unsigned long long a;
	int p;

	if (!(n->flags & SK_MULTIPLE))
		return 1;
	return (n->flags & SK_MULTFAST) && !sdec_parts_from_json(inst, &a, &p) &&
	       sdec_parts_multiple(a, p, n->mult_b, n->mult_q);
}

/* Every number keyword on exact decimals, reporting each failure. */
NOINLINE int v_number_exact(struct vctx *c, const struct snode *n, const json_t *inst)
{
	struct sdec x;
	char a[48], b[48];
	int bad = 0;

	if (sdec_from_json(inst, &x))
		return fail(c, "type", "number is not finite");
	if ((n->flags & SK_MINIMUM) && sdec_cmp(&x, &n->minimum) < 0) {
		sdec_format(&n->minimum, a, sizeof(a)), sdec_format(&x, b, sizeof(b));
		bad |= fail(c, "minimum", "expected >= %s, got %s", a, b);
		if (done(c))
			return bad;
	}
	if ((n->flags & SK_MAXIMUM) && sdec_cmp(&x, &n->maximum) > 0) {
		sdec_format(&n->maximum, a, sizeof(a)), sdec_format(&x, b, sizeof(b));
		bad |= fail(c, "maximum", "expected <= %s, got %s", a, b);
		if (done(c))
			return bad;
	}
	if ((n->flags & SK_XMINIMUM) && sdec_cmp(&x, &n->xminimum) <= 0) {
		sdec_format(&n->xminimum, a, sizeof(a)), sdec_format(&x, b, sizeof(b));
		bad |= fail(c, "exclusiveMinimum", "expected > %s, got %s", a, b);
		if (done(c))
			return bad;
	}
	if ((n->flags & SK_XMAXIMUM) && sdec_cmp(&x, &n->xmaximum) >= 0) {
		sdec_format(&n->xmaximum, a, sizeof(a)), sdec_format(&x, b, sizeof(b));
		bad |= fail(c, "exclusiveMaximum", "expected < %s, got %s", a, b);
		if (done(c))
			return bad;
	}
	if ((n->flags & SK_MULTIPLE) && !sdec_is_multiple(&x, &n->multiple)) {
		sdec_format(&n->multiple, a, sizeof(a)), sdec_format(&x, b, sizeof(b));
		bad |= fail(c, "multipleOf", "expected a multiple of %s, got %s", a, b);
	}
	return bad;
}

ALWAYS_INLINE int v_number(struct vctx *c, const struct snode *n, const json_t *inst)
{
	if (bounds_pass_fast(n, inst) && multiple_pass_fast(n, inst))
		return 0;
	return v_number_exact(c, n, inst);
}

/* Whether minLength/maxLength need the characters counted: a string of
 * len bytes has between len / 4 and len characters. */
static int must_count(const struct snode *n, size_t len)
{
	return (n->min_length >= 0 && len < 4 * (unsigned long long)n->min_length) ||
	       (n->max_length >= 0 && len > (unsigned long long)n->max_length);
}

/* Every string keyword, reporting each failure. */
NOINLINE int v_string_all(struct vctx *c, const struct snode *n, const char *s, size_t len)
{
	int bad = 0;

	if (must_count(n, len)) {
		size_t chars = utf8_length(s, len);

		if (n->min_length >= 0 && chars < (unsigned long long)n->min_length) {
			bad |= fail(c, "minLength", "expected at least %lld characters, got %zu",
				    n->min_length, chars);
			if (done(c))
				return bad;
		}
		if (n->max_length >= 0 && chars > (unsigned long long)n->max_length) {
			bad |= fail(c, "maxLength", "expected at most %lld characters, got %zu",
				    n->max_length, chars);
			if (done(c))
				return bad;
		}
	}
	if (n->has_pattern) {
		int m = regex_match(c, &n->pattern, n->pattern_source, s, len, "pattern");

		if (m < 0)
			return 1;
		if (!m) {
			bad |= fail(c, "pattern", "expected to match %.120s", n->pattern_source);
			if (done(c))
				return bad;
		}
	}
	if (n->format != SFMT_NONE && !sformat_check(n->format, s, len))
		bad |= fail(c, "format", "expected a valid %.40s", n->format_name);
	return bad;
}

/* Lengths that pass on the byte count alone, and no pattern or format: the
 * usual string member, decided without looking at its bytes. */
ALWAYS_INLINE int v_string(struct vctx *c, const struct snode *n, const json_t *inst)
{
	size_t len = json_string_length(inst);

	if (!must_count(n, len) && !n->has_pattern && n->format == SFMT_NONE)
		return 0;
	return v_string_all(c, n, json_string_value(inst), len);
}

NOINLINE int v_array(struct vctx *c, const struct snode *n, const json_t *inst, int idepth)
{
	size_t size = json_array_size(inst);
	int bad = 0;

	if (n->min_items >= 0 && size < (unsigned long long)n->min_items) {
		bad |= fail(c, "minItems", "expected at least %lld items, got %zu", n->min_items, size);
		if (done(c))
			return bad;
	}
	if (n->max_items >= 0 && size > (unsigned long long)n->max_items) {
		bad |= fail(c, "maxItems", "expected at most %lld items, got %zu", n->max_items, size);
		if (done(c))
			return bad;
	}
	if ((n->flags & SK_UNIQUE) && schema_json_has_duplicates(inst)) {
		bad |= fail(c, "uniqueItems", "expected unique items, found duplicates");
		if (done(c))
			return bad;
	}
	for (size_t i = 0; i < size; i++) {
		const struct snode *item = NULL;
		size_t old;

		if (!n->items_is_array)
			item = n->items;
		else if (i < n->nitems)
			item = n->items_array[i];
		else
			item = n->additional_items;
		if (!item)
			break;
		old = push_index(c, i);
		if (item->boolean == 0 && n->items_is_array && i >= n->nitems) {
			bad |= fail(c, "additionalItems", "no items allowed past the first %zu", n->nitems);
		} else {
			bad |= v_child(c, item, json_array_get(inst, i), idepth + 1);
		}
		pop(c, old);
		if (bad && done(c))
			return bad;
	}
	if (n->contains) {
		int found = 0;

		for (size_t i = 0; i < size && !found && !c->fatal; i++)
			found = matches(c, n->contains, json_array_get(inst, i), idepth + 1);
		if (!found)
			bad |= fail(c, "contains", "no item matches the contains schema");
	}
	return bad;
}

static const struct sslot *find_name(const struct snode *n, const char *key, size_t len)
{
	uint32_t h = schema_name_hash(key, len), i = h & n->names_mask;

	while (n->names[i].name) {
		if (n->names[i].hash == h && n->names[i].len == len &&
		    schema_bytes_equal(n->names[i].name, key, len))
			return &n->names[i];
		i = (i + 1) & n->names_mask;
	}
	return NULL;
}

/* One pass over the members does properties, patternProperties,
 * additionalProperties, propertyNames and (through a bit mask) required. */
static int v_members(struct vctx *c, const struct snode *n, const json_t *inst, int idepth,
		     uint64_t *seen)
{
	const char *key;
	size_t klen, next = 0;
	json_t *val;
	int bad = 0;

	/* the iterator directly: jansson's keylen_foreach macro looks the
	 * key up again three times per member */
	for (void *it = json_object_iter((json_t *)inst); it;
	     it = json_object_iter_next((json_t *)inst, it)) {
		key = json_object_iter_key(it);
		klen = json_object_iter_key_len(it);
		val = json_object_iter_value(it);
		const struct sslot *slot = NULL;
		int matched = 0;

		/* instances mostly list members in the schema's order: try the
		 * property after the last one found before hashing */
		if (next < n->nprops && n->props[next].len == klen &&
		    schema_bytes_equal(n->props[next].name, key, klen))
			slot = n->props[next].slot;
		else if (n->names)
			slot = find_name(n, key, klen);
		size_t old = push(c, key, klen);

		if (slot) {
			if (slot->req >= 0)
				*seen |= 1ULL << slot->req;
			if (slot->prop >= 0) {
				next = (size_t)slot->prop + 1;
				matched = 1;
				bad |= v_child(c, n->props[slot->prop].node, val, idepth + 1);
			}
		}
		for (size_t i = 0; i < n->npattern_props; i++) {
			int m = regex_match(c, &n->pattern_props[i].re, n->pattern_props[i].source, key,
					    klen, "patternProperties");

			if (m < 0) {
				pop(c, old);
				return 1;
			}
			if (m) {
				matched = 1;
				bad |= v_child(c, n->pattern_props[i].node, val, idepth + 1);
			}
		}
		if (!matched && n->additional_props) {
			if (n->additional_props->boolean == 0)
				bad |= fail(c, "additionalProperties", "property not allowed");
			else
				bad |= v_child(c, n->additional_props, val, idepth + 1);
		}
		if (n->property_names) {
			json_t *name = json_stringn(key, klen);
			int ok;

			if (!name) {
				c->nomem = 1;
				pop(c, old);
				return fatal(c, "propertyNames", "out of memory");
			}
			ok = matches(c, n->property_names, name, idepth + 1);
			json_decref(name);
			if (!ok)
				bad |= fail(c, "propertyNames", "property name \"%.80s\" is not allowed", key);
		}
		pop(c, old);
		if (bad && done(c))
			return bad;
	}
	return bad;
}

NOINLINE int v_object(struct vctx *c, const struct snode *n, const json_t *inst, int idepth)
{
	size_t size = json_object_size(inst);
	uint64_t seen = 0;
	int bad = 0;

	if (n->min_props >= 0 && size < (unsigned long long)n->min_props) {
		bad |= fail(c, "minProperties", "expected at least %lld properties, got %zu",
			    n->min_props, size);
		if (done(c))
			return bad;
	}
	if (n->max_props >= 0 && size > (unsigned long long)n->max_props) {
		bad |= fail(c, "maxProperties", "expected at most %lld properties, got %zu",
			    n->max_props, size);
		if (done(c))
			return bad;
	}
	if (n->names || n->npattern_props || n->additional_props || n->property_names) {
		bad |= v_members(c, n, inst, idepth, &seen);
		if (bad && done(c))
			return bad;
	}
	for (size_t i = 0; i < n->nrequired; i++) {
		int present = n->required_in_table ? (int)((seen >> i) & 1) :
						     json_object_get(inst, n->required[i]) != NULL;

		if (!present) {
			bad |= fail(c, "required", "missing required property \"%.80s\"", n->required[i]);
			if (done(c))
				return bad;
		}
	}
	for (size_t i = 0; i < n->ndeps; i++) {
		const struct sdep *d = &n->deps[i];

		if (!json_object_get(inst, d->name))
			continue;
		if (d->node) {
			bad |= v_node(c, d->node, inst, idepth);
		} else {
			for (size_t j = 0; j < d->nnames; j++) {
				if (!json_object_get(inst, d->names[j])) {
					bad |= fail(c, "dependencies",
						    "property \"%.60s\" requires property \"%.60s\"",
						    d->name, d->names[j]);
					if (done(c))
						return bad;
				}
			}
		}
		if (bad && done(c))
			return bad;
	}
	return bad;
}

/* const and enum. */
NOINLINE int v_values(struct vctx *c, const struct snode *n, const json_t *inst)
{
	int bad = 0;

	if ((n->flags & SK_CONST) && !schema_json_equal(n->const_value, inst)) {
		bad |= fail(c, "const", "expected the constant value");
		if (done(c))
			return bad;
	}
	if (n->flags & SK_ENUM) {
		size_t i, cnt = json_array_size(n->enum_values);

		if (n->enum_strings && json_is_string(inst)) { /* bytes, no deep equality */
			const char *s = json_string_value(inst);
			size_t len = json_string_length(inst);

			for (i = 0; i < cnt; i++)
				if (n->enum_strs[i].len == len &&
				    schema_bytes_equal(n->enum_strs[i].s, s, len))
					break;
		} else {
			for (i = 0; i < cnt; i++)
				if (schema_json_equal(json_array_get(n->enum_values, i), inst))
					break;
		}
		if (i == cnt)
			bad |= fail(c, "enum", "expected one of the %zu allowed values", cnt);
	}
	return bad;
}

/* The applicators allOf, anyOf, oneOf, not, if/then/else (SK_APPLY: most
 * nodes have none of them). */
NOINLINE int v_apply(struct vctx *c, const struct snode *n, const json_t *inst, int idepth)
{
	int bad = 0;

	for (size_t i = 0; i < n->nall_of; i++) {
		bad |= v_node(c, n->all_of[i], inst, idepth);
		if (bad && done(c))
			return bad;
	}
	if (n->nany_of) {
		size_t i;

		for (i = 0; i < n->nany_of && !c->fatal; i++)
			if (matches(c, n->any_of[i], inst, idepth))
				break;
		if (i == n->nany_of) {
			bad |= fail(c, "anyOf", "expected to match at least one of %zu schemas",
				    n->nany_of);
			if (done(c))
				return bad;
		}
	}
	if (n->none_of) {
		size_t hits = 0;

		for (size_t i = 0; i < n->none_of && hits < 2 && !c->fatal; i++)
			hits += (size_t)matches(c, n->one_of[i], inst, idepth);
		if (hits != 1) {
			bad |= hits ? fail(c, "oneOf", "expected to match exactly one of %zu schemas, matched several",
					   n->none_of) :
				      fail(c, "oneOf", "expected to match exactly one of %zu schemas, matched none",
					   n->none_of);
			if (done(c))
				return bad;
		}
	}
	if (n->not_ && matches(c, n->not_, inst, idepth)) {
		bad |= fail(c, "not", "expected not to match the schema under \"not\"");
		if (done(c))
			return bad;
	}
	if (n->if_ && (n->then_ || n->else_)) {
		if (matches(c, n->if_, inst, idepth)) {
			if (n->then_)
				bad |= v_node(c, n->then_, inst, idepth);
		} else if (n->else_) {
			bad |= v_node(c, n->else_, inst, idepth);
		}
	}
	return bad;
}

/* type failed: the message names what was expected (kept out of v_node,
 * which runs for every value). */
NOINLINE int fail_type(struct vctx *c, const struct snode *n, const json_t *inst)
{
	char want[80];

	type_list(n->types, want, sizeof(want));
	return fail(c, "type", "expected %s, got %s", want, type_name(inst));
}

/* A node that is a "$ref": the target, unless that re-enters itself. */
NOINLINE int v_ref(struct vctx *c, const struct snode *n, const json_t *inst, int idepth)
{
	int bad;

	for (size_t i = c->nrefs; i-- > 0;) {
		if (c->refs[i].target == n->ref && c->refs[i].inst == inst)
			return fatal(c, "$ref",
				     "$ref \"%.80s\" loops without consuming the instance",
				     n->ref_text);
	}
	c->refs[c->nrefs].target = n->ref;
	c->refs[c->nrefs].inst = inst;
	c->nrefs++;
	c->depth++;
	bad = v_node(c, n->ref, inst, idepth);
	c->depth--;
	c->nrefs--;
	return bad;
}

/* A bound on the way down was hit (or already had been). */
NOINLINE int v_bound(struct vctx *c, int idepth)
{
	if (c->fatal)
		return 1;
	if (idepth > SCHEMA_MAX_INSTANCE_DEPTH)
		return fatal(c, "depth", "instance nested deeper than %d levels",
			     SCHEMA_MAX_INSTANCE_DEPTH);
	return fatal(c, "$ref", "schema applications nested deeper than %d",
		     SCHEMA_MAX_EVAL_DEPTH);
}

/* Every keyword of object schema n but $ref, in the order failures are
 * reported. */
ALWAYS_INLINE int v_keywords(struct vctx *c, const struct snode *n, const json_t *inst, int idepth)
{
	unsigned t = type_of(inst);
	int bad = 0;

	if ((n->flags & SK_TYPE) && !(n->types & t)) {
		bad |= fail_type(c, n, inst);
		if (done(c))
			return bad;
	}
	if ((t & ST_NUMBER) && (n->flags & SK_ANYNUMBER))
		bad |= v_number(c, n, inst);
	else if (t == ST_STRING && (n->flags & SK_ANYSTRING))
		bad |= v_string(c, n, inst);
	else if (t == ST_ARRAY && (n->flags & SK_ANYARRAY))
		bad |= v_array(c, n, inst, idepth);
	else if (t == ST_OBJECT && (n->flags & SK_ANYOBJECT))
		bad |= v_object(c, n, inst, idepth);
	if (bad && done(c))
		return bad;
	if (n->flags & (SK_CONST | SK_ENUM)) {
		bad |= v_values(c, n, inst);
		if (bad && done(c))
			return bad;
	}
	if (n->flags & SK_APPLY)
		bad |= v_apply(c, n, inst, idepth);
	return bad;
}

static int v_node(struct vctx *c, const struct snode *n, const json_t *inst, int idepth)
{
	int bad;

	if (n->boolean >= 0)
		return n->boolean ? 0 : fail(c, "false", "no value is allowed here");
	if (c->fatal || idepth > SCHEMA_MAX_INSTANCE_DEPTH || c->depth >= SCHEMA_MAX_EVAL_DEPTH)
		return v_bound(c, idepth);
	if (n->ref)
		return v_ref(c, n, inst, idepth);
	c->depth++;
	bad = v_keywords(c, n, inst, idepth);
	c->depth--;
	return bad | c->fatal;
}

/* v_node for a member or item. An SK_LEAF node applies no other schema,
 * so the application depth v_node would count is never looked at: its
 * keywords are checked directly. */
ALWAYS_INLINE int v_child(struct vctx *c, const struct snode *n, const json_t *inst, int idepth)
{
	if (!(n->flags & SK_LEAF))
		return v_node(c, n, inst, idepth);
	if (c->fatal || idepth > SCHEMA_MAX_INSTANCE_DEPTH || c->depth >= SCHEMA_MAX_EVAL_DEPTH)
		return v_bound(c, idepth);
	return v_keywords(c, n, inst, idepth) | c->fatal;
}

int schema_validate(const struct schema *s, const json_t *instance, struct schema_errors *errs)
{
	struct vctx ctx; /* ~9 KiB: cheaper on the stack than from malloc */
	struct vctx *c = &ctx;
	int bad, rc;

	if (errs)
		schema_errors_init(errs);
	if (!s || s->magic != SCHEMA_MAGIC || !s->root || !instance)
		return E(INTERNAL);
	c->s = s;
	c->errs = errs;
	c->quiet = 0;
	c->fatal = 0;
	c->depth = 0;
	c->nsegs = 0;
	c->md = NULL;
	c->nomem = 0;
	c->nrefs = 0;
	bad = v_node(c, s->root, instance, 0);
	rc = c->nomem ? E(INTERNAL) : bad ? E(VALIDATION) : 0;
	return rc;
}
