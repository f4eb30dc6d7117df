/*
 * Policy YAML as a tree of nodes that remember where they came from
 * (after h2o's configurator): libyaml's event stream is folded into
 * scalars, lists and mappings, each with its 1-based line and column, so
 * the typed reader (load.c) can say exactly where a value is wrong.
 *
 * This layer refuses what no policy needs and some attacks use: anchors,
 * aliases and tags, more than one document, nesting deeper than
 * POLICY_MAX_DEPTH, more than POLICY_MAX_NODES nodes, texts longer than
 * POLICY_MAX_BYTES. It does not look at keys or types: that is load.c.
 *
 * Nodes live in the tree's arena and die with policy_tree_release. Internal
 * to src/policy/.
 */
#ifndef NEXRA_POLICY_TREE_H
#define NEXRA_POLICY_TREE_H

#include <stddef.h>

#include "policy/policy.h"

enum policy_node_kind {
	POLICY_NODE_SCALAR,
	POLICY_NODE_SEQ,
	POLICY_NODE_MAP,
};

struct policy_node {
	enum policy_node_kind kind;
	int line, col;             /* 1-based */
	int quoted;                /* scalar not plain (quoted or block): always a string */
	const char *text;          /* scalar bytes, NUL-terminated (may hold NULs); arena */
	size_t len;
	struct policy_node *child; /* first item; in a mapping, keys and values alternate */
	struct policy_node *next;  /* next sibling */
	size_t n;                  /* items of a list, pairs of a mapping */
};

struct policy_chunk;

struct policy_tree {
	struct policy_node *root; /* NULL for an empty document */
	struct policy_chunk *chunks;
	size_t nodes;
};

/* Parses yaml (borrowed) into t. 0, E(VALIDATION) with err filled, or
 * E(INTERNAL). t must be released in every case. */
int policy_tree_parse(const char *yaml, size_t len, struct policy_tree *t, struct policy_err *err);
void policy_tree_release(struct policy_tree *t);

/* Fills err: message "line:col: path: problem" (path part left out when
 * empty, place left out when line is 0). Returns E(VALIDATION). */
int policy_err_set(struct policy_err *err, int line, int col, const char *path, const char *fmt,
		   ...) __attribute__((format(printf, 5, 6)));

#endif
