/*
 * libyaml events -> policy_node tree; see tree.h.
 *
 * The event API (not the document API) is used so that nothing is built
 * for what is refused: an alias is an error the moment it is seen, so a
 * billion-laughs text costs one event, and the depth and node limits stop
 * the parser before it allocates for the rest of the input. libyaml's own
 * state is bounded by the input, which is bounded by POLICY_MAX_BYTES.
 *
 * Nodes and scalar texts come from a chunked arena: one free releases the
 * tree, and no node is ever freed alone.
 */
#include "policy/tree.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "core/err.h"
#include "core/banned.h"

#define CHUNK_SIZE (16 * 1024)

struct policy_chunk {
	struct policy_chunk *next;
	size_t used, cap;
	_Alignas(16) unsigned char data[];
};

int policy_err_set(struct policy_err *err, int line, int col, const char *path, const char *fmt,
		   ...)
{
	va_list ap;

	err->line = line;
	err->col = col;
	snprintf(err->path, sizeof(err->path), "%s", path ? path : "");
	va_start(ap, fmt);
	vsnprintf(err->problem, sizeof(err->problem), fmt, ap);
	va_end(ap);
	if (line > 0 && err->path[0])
		snprintf(err->message, sizeof(err->message), "%d:%d: %s: %s", line, col, err->path,
			 err->problem);
	else if (line > 0)
		snprintf(err->message, sizeof(err->message), "%d:%d: %s", line, col, err->problem);
	else if (err->path[0])
		snprintf(err->message, sizeof(err->message), "%s: %s", err->path, err->problem);
	else
		snprintf(err->message, sizeof(err->message), "%s", err->problem);
	return E(VALIDATION);
}

/* n bytes from the arena, 16-aligned; NULL when memory ran out. */
static void *arena_alloc(struct policy_tree *t, size_t n)
{
	struct policy_chunk *c = t->chunks;
	void *p;

	n = (n + 15) & ~(size_t)15;
	if (!c || c->cap - c->used < n) {
		size_t cap = n > CHUNK_SIZE ? n : CHUNK_SIZE;

		c = malloc(sizeof(*c) + cap);
		if (!c)
			return NULL;
		c->used = 0;
		c->cap = cap;
		c->next = t->chunks;
		t->chunks = c;
	}
	p = c->data + c->used;
	c->used += n;
	return p;
}

void policy_tree_release(struct policy_tree *t)
{
	struct policy_chunk *c, *next;

	if (!t)
		return;
	for (c = t->chunks; c; c = next) {
		next = c->next;
		free(c);
	}
	memset(t, 0, sizeof(*t));
}

/* Line and column (1-based) of byte offset off, for reader errors that
 * carry an offset instead of a mark. */
static void offset_place(const char *s, size_t len, size_t off, int *line, int *col)
{
	*line = 1;
	*col = 1;
	for (size_t i = 0; i < off && i < len; i++) {
		if (s[i] == '\n') {
			(*line)++;
			*col = 1;
		} else {
			(*col)++;
		}
	}
}

static int yaml_error(const yaml_parser_t *p, const char *yaml, size_t len, struct policy_err *err)
{
	int line, col;
	const char *problem = p->problem ? p->problem : "cannot be parsed";

	if (p->error == YAML_MEMORY_ERROR)
		return E(INTERNAL);
	if (p->error == YAML_READER_ERROR) {
		offset_place(yaml, len, p->problem_offset, &line, &col);
		return policy_err_set(err, line, col, "", "invalid YAML: %s", problem);
	}
	line = (int)p->problem_mark.line + 1;
	col = (int)p->problem_mark.column + 1;
	if (p->context)
		return policy_err_set(err, line, col, "", "invalid YAML: %s (%s at %d:%d)", problem,
				      p->context, (int)p->context_mark.line + 1,
				      (int)p->context_mark.column + 1);
	return policy_err_set(err, line, col, "", "invalid YAML: %s", problem);
}

struct builder {
	struct policy_tree *t;
	struct policy_node *open[POLICY_MAX_DEPTH]; /* containers being filled */
	struct policy_node *last[POLICY_MAX_DEPTH]; /* their last child so far */
	size_t items[POLICY_MAX_DEPTH];
	int depth;
};

/* A new node at the event's place, linked under the open container. */
static int add_node(struct builder *b, const yaml_event_t *ev, enum policy_node_kind kind,
		    struct policy_err *err, struct policy_node **out)
{
	struct policy_node *n;
	int line = (int)ev->start_mark.line + 1, col = (int)ev->start_mark.column + 1;

	if (b->t->nodes >= POLICY_MAX_NODES)
		return policy_err_set(err, line, col, "",
				      "document has more than %d values (the limit)", POLICY_MAX_NODES);
	n = arena_alloc(b->t, sizeof(*n));
	if (!n)
		return E(INTERNAL);
	memset(n, 0, sizeof(*n));
	n->kind = kind;
	n->line = line;
	n->col = col;
	b->t->nodes++;
	if (b->depth == 0) {
		b->t->root = n;
	} else {
		int d = b->depth - 1;

		if (b->last[d])
			b->last[d]->next = n;
		else
			b->open[d]->child = n;
		b->last[d] = n;
		b->items[d]++;
	}
	*out = n;
	return 0;
}

static int open_container(struct builder *b, const yaml_event_t *ev, enum policy_node_kind kind,
			  struct policy_err *err)
{
	struct policy_node *n = NULL;
	int rc;

	if (b->depth >= POLICY_MAX_DEPTH)
		return policy_err_set(err, (int)ev->start_mark.line + 1,
				      (int)ev->start_mark.column + 1, "",
				      "nesting is deeper than %d levels (the limit)", POLICY_MAX_DEPTH);
	rc = add_node(b, ev, kind, err, &n);
	if (rc)
		return rc;
	b->open[b->depth] = n;
	b->last[b->depth] = NULL;
	b->items[b->depth] = 0;
	b->depth++;
	return 0;
}

static void close_container(struct builder *b)
{
	int d = b->depth - 1;
	struct policy_node *n = b->open[d];

	n->n = n->kind == POLICY_NODE_MAP ? b->items[d] / 2 : b->items[d];
	b->depth--;
}

static int add_scalar(struct builder *b, const yaml_event_t *ev, struct policy_err *err)
{
	struct policy_node *n = NULL;
	char *text;
	size_t len = ev->data.scalar.length;
	int rc;

	rc = add_node(b, ev, POLICY_NODE_SCALAR, err, &n);
	if (rc)
		return rc;
	text = arena_alloc(b->t, len + 1);
	if (!text)
		return E(INTERNAL);
	if (len)
		memcpy(text, ev->data.scalar.value, len);
	text[len] = '\0';
	n->text = text;
	n->len = len;
	n->quoted = ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE;
	return 0;
}

/* Anchors and tags ride on scalars and container starts alike. */
static int refuse_props(const yaml_event_t *ev, const yaml_char_t *anchor, const yaml_char_t *tag,
			struct policy_err *err)
{
	int line = (int)ev->start_mark.line + 1, col = (int)ev->start_mark.column + 1;

	if (anchor)
		return policy_err_set(err, line, col, "", "anchors (&%.40s) are not allowed",
				      (const char *)anchor);
	if (tag)
		return policy_err_set(err, line, col, "", "tags (%.60s) are not allowed",
				      (const char *)tag);
	return 0;
}

static int on_event(struct builder *b, const yaml_event_t *ev, int *docs, struct policy_err *err)
{
	int line = (int)ev->start_mark.line + 1, col = (int)ev->start_mark.column + 1;
	int rc = 0;

	switch (ev->type) {
	case YAML_DOCUMENT_START_EVENT:
		(*docs)++;
		if (*docs > 1)
			return policy_err_set(err, line, col, "",
					      "only one YAML document is allowed");
		break;
	case YAML_ALIAS_EVENT:
		return policy_err_set(err, line, col, "", "aliases (*%.40s) are not allowed",
				      (const char *)ev->data.alias.anchor);
	case YAML_SCALAR_EVENT:
		rc = refuse_props(ev, ev->data.scalar.anchor, ev->data.scalar.tag, err);
		if (!rc)
			rc = add_scalar(b, ev, err);
		break;
	case YAML_SEQUENCE_START_EVENT:
		rc = refuse_props(ev, ev->data.sequence_start.anchor, ev->data.sequence_start.tag,
				  err);
		if (!rc)
			rc = open_container(b, ev, POLICY_NODE_SEQ, err);
		break;
	case YAML_MAPPING_START_EVENT:
		rc = refuse_props(ev, ev->data.mapping_start.anchor, ev->data.mapping_start.tag,
				  err);
		if (!rc)
			rc = open_container(b, ev, POLICY_NODE_MAP, err);
		break;
	case YAML_SEQUENCE_END_EVENT:
	case YAML_MAPPING_END_EVENT:
		if (b->depth > 0) /* libyaml pairs them; guard our own bookkeeping */
			close_container(b);
		break;
	default:
		break;
	}
	return rc;
}

int policy_tree_parse(const char *yaml, size_t len, struct policy_tree *t, struct policy_err *err)
{
	yaml_parser_t p;
	yaml_event_t ev;
	struct builder b;
	int rc = 0, docs = 0, done = 0;

	memset(t, 0, sizeof(*t));
	memset(&b, 0, sizeof(b));
	b.t = t;
	if (len > POLICY_MAX_BYTES)
		return policy_err_set(err, 1, 1, "",
				      "document is %zu bytes, more than the limit of %d", len,
				      POLICY_MAX_BYTES);
	if (!yaml_parser_initialize(&p))
		return E(INTERNAL);
	yaml_parser_set_input_string(&p, (const unsigned char *)yaml, len);
	yaml_parser_set_encoding(&p, YAML_UTF8_ENCODING);
	while (!done) {
		if (!yaml_parser_parse(&p, &ev)) {
			rc = yaml_error(&p, yaml, len, err);
			goto out;
		}
		done = ev.type == YAML_STREAM_END_EVENT;
		rc = on_event(&b, &ev, &docs, err);
		yaml_event_delete(&ev);
		if (rc)
			goto out;
	}
out:
	yaml_parser_delete(&p);
	return rc;
}
