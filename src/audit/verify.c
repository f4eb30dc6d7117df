/*
 * Offline export verification; see verify.h and docs/audit.md.
 *
 * JSONL entry lines are not parsed as JSON: the entry bytes are cut out of
 * the line by its fixed frame ({"entry": ... ,"leaf_hash":"<hex>"}) and
 * hashed as they are, and only the event id is read from them (the first
 * `,"event_id":`, which cannot occur inside a JSON string since a quote
 * there is escaped). That is what lets one core check about a million
 * entries a second, together with reading the file in large blocks (no
 * copy per line) and hashing the entries in batches: the leaf hashes of a
 * batch share the CPU's SIMD lanes (merkle_leaves), and so do the tree
 * nodes they complete (merkle_frontier_append_many). A batch is checked in
 * file order, before anything after it is reported, so the first problem
 * named is the same as entry by entry. CSV rows are turned back into the entry bytes by the
 * canonical rules (string cells escaped with jw_str, number cells copied
 * as they are, empty cells null).
 */
#include "audit/verify.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "audit/merkle.h"
#include "core/buf.h"
#include "core/jsonw.h"
#include "core/rand.h"
#include "core/banned.h"

#define CSV_COLS 15
#define BATCH MERKLE_BATCH
#define READ_BUF (2 * AUDIT_LINE_MAX) /* longer lines are always too long */

static const char csv_header[] = "event_id,timestamp,org_id,delegation_id,caller_id,callee_id,"
				 "policy_ref,decision,status,cost_usd,budget_remaining,"
				 "trust_before,trust_after,approval,leaf_hash";

struct state {
	struct audit_verify_result *res;
	const unsigned char *pk;
	const struct checkpoint *old;
	struct merkle_frontier tree;
	int64_t first, next, line;
	int have_old_root, csv, done;
	merkle_hash old_root;
	char org_id[ID_MAX];
	struct buf entry; /* CSV: the rebuilt entry bytes */
	/* entries read, not yet hashed: their bytes stay in the read buffer
	 * (or s->entry, CSV) until flush() */
	size_t pending;
	const unsigned char *bytes[BATCH];
	size_t len[BATCH];
	int64_t at_line[BATCH];
	int stored_ok[BATCH];
	merkle_hash stored[BATCH], leaf[BATCH], work[BATCH];
};

static int bad(struct state *s, int64_t event, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int bad(struct state *s, int64_t event, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(s->res->message, sizeof(s->res->message), fmt, ap);
	va_end(ap);
	s->res->line = s->line;
	s->res->event_id = event;
	return -1;
}

static void note_old(struct state *s)
{
	if (s->old && s->tree.size == s->old->tree_size) {
		merkle_frontier_root(&s->tree, s->old_root);
		s->have_old_root = 1;
	}
}

/* ---- the header ----------------------------------------------------------- */

static int header(struct state *s, const char *json, size_t len)
{
	json_t *o = json_loadb(json, len, 0, NULL), *prefix, *v;
	int64_t psize;
	size_t i, need = 0;
	int rc = -1, lvl;

	if (!json_is_object(o))
		goto out;
	if (!s->csv) {
		json_t *inner = json_incref(json_object_get(o, "export"));

		json_decref(o);
		o = inner;
	}
	prefix = json_object_get(o, "prefix");
	if (!json_is_object(o) || !json_is_integer(json_object_get(o, "first_event_id")) ||
	    !json_is_integer(json_object_get(o, "prefix_size")) || !json_is_array(prefix) ||
	    !json_is_string(json_object_get(o, "org_id")))
		goto out;
	s->first = json_integer_value(json_object_get(o, "first_event_id"));
	psize = json_integer_value(json_object_get(o, "prefix_size"));
	snprintf(s->org_id, sizeof(s->org_id), "%s", json_string_value(json_object_get(o, "org_id")));
	if (s->first < 1 || psize != s->first - 1)
		goto out;
	for (lvl = 0; lvl < MERKLE_MAX_LEVELS; lvl++)
		need += ((uint64_t)psize >> lvl) & 1;
	if (json_array_size(prefix) != need)
		goto out;
	merkle_frontier_init(&s->tree);
	s->tree.size = (uint64_t)psize;
	i = 0;
	for (lvl = MERKLE_MAX_LEVELS - 1; lvl >= 0; lvl--) {
		if (!(((uint64_t)psize >> lvl) & 1))
			continue;
		v = json_array_get(prefix, i++);
		if (!json_is_string(v) || hex_decode(json_string_value(v), s->tree.h[lvl], 32))
			goto out;
	}
	s->next = s->first;
	note_old(s);
	rc = 0;
out:
	json_decref(o);
	return rc ? bad(s, 0, "the export header is missing or malformed") : 0;
}

/* ---- entries -------------------------------------------------------------- */

static int64_t event_of(const char *e, size_t n)
{
	static const char key[] = ",\"event_id\":";
	const char *p = memmem(e, n, key, sizeof(key) - 1);
	int64_t v = 0;

	if (!p)
		return -1;
	for (p += sizeof(key) - 1; p < e + n && *p >= '0' && *p <= '9'; p++) {
		if (v > INT64_MAX / 10 - 10)
			return -1;
		v = v * 10 + (*p - '0');
	}
	return v;
}

/* 64 lowercase hex digits (as hex_decode takes them) into 32 bytes; -1
 * when any is not one. */
static int hex32(const char *hex, unsigned char *out)
{
	static signed char val[256];
	int badbits = 0;

	if (!val['1']) {
		memset(val, -1, sizeof(val));
		for (int i = 0; i < 16; i++)
			val[(unsigned char)"0123456789abcdef"[i]] = (signed char)i;
	}
	for (int i = 0; i < 32; i++) {
		int hi = val[(unsigned char)hex[2 * i]], lo = val[(unsigned char)hex[2 * i + 1]];

		badbits |= hi | lo;
		out[i] = (unsigned char)((unsigned)hi << 4 | (unsigned)lo);
	}
	return badbits < 0 ? -1 : 0;
}

/* Hash the pending entries and check them in file order; the good ones
 * before the first bad one join the tree. */
static int flush(struct state *s)
{
	size_t n = s->pending, good = 0;

	if (!n)
		return 0;
	s->pending = 0;
	merkle_leaves(s->bytes, s->len, n, s->leaf);
	while (good < n && s->stored_ok[good] && !memcmp(s->stored[good], s->leaf[good], 32))
		good++;
	merkle_frontier_append_many(&s->tree, s->leaf, good, s->work);
	s->res->entries += (int64_t)good;
	if (good < n) {
		int64_t ev = s->next - (int64_t)(n - good);

		s->line = s->at_line[good];
		return bad(s, ev, "entry %lld was changed: its bytes do not hash to the leaf "
				  "the log recorded", (long long)ev);
	}
	note_old(s);
	return 0;
}

/* An entry's bytes and the leaf hash the server recorded for it (64 hex
 * digits, or NULL): checked now for its place, queued for its hash. The
 * bytes must stay where they are until the next flush(). */
static int entry(struct state *s, const char *e, size_t n, const char *stored_hex)
{
	int64_t ev = event_of(e, n);
	size_t i;

	if (ev != s->next && flush(s))
		return -1; /* an earlier entry's problem comes first */
	if (ev < 1)
		return bad(s, s->next, "the entry at line %lld has no event_id: entry %lld was "
				       "changed", (long long)s->line, (long long)s->next);
	if (ev != s->next) {
		if (ev > s->next)
			return bad(s, s->next, "entry %lld is missing (found %lld where it should be)",
				   (long long)s->next, (long long)ev);
		return bad(s, ev, "entry %lld is out of order or repeated (expected %lld)",
			   (long long)ev, (long long)s->next);
	}
	i = s->pending++;
	s->bytes[i] = (const unsigned char *)e;
	s->len[i] = n;
	s->at_line[i] = s->line;
	s->stored_ok[i] = stored_hex && strlen(stored_hex) == 64 && !hex32(stored_hex, s->stored[i]);
	s->next++;
	/* a full batch, or the old checkpoint's size reached (its root is taken there) */
	if (s->pending == BATCH || s->csv ||
	    (s->old && s->tree.size + s->pending == s->old->tree_size))
		return flush(s);
	return 0;
}

static int jsonl_entry(struct state *s, char *line, size_t len)
{
	static const char head[] = "{\"entry\":", sep[] = ",\"leaf_hash\":\"";
	const size_t hl = sizeof(head) - 1, sl = sizeof(sep) - 1, tail = sl + 64 + 2;

	if (len < hl + tail || memcmp(line + len - tail, sep, sl) ||
	    memcmp(line + len - 2, "\"}", 2))
		return flush(s) ? -1 : bad(s, s->next, "line %lld is not an entry line as the export writes them "
				       "(entry %lld changed or inserted?)",
			   (long long)s->line, (long long)s->next);
	line[len - 2] = '\0';
	return entry(s, line + hl, len - hl - tail, line + len - 2 - 64);
}

/* ---- CSV ------------------------------------------------------------------ */

/* Split an RFC 4180 record (without its line end) into at most max cells,
 * unquoting in place. The number of cells, or -1 when malformed. */
static int csv_split(char *rec, char **cells, int max)
{
	char *r = rec, *w;
	int n = 0;

	for (;;) {
		if (n == max)
			return -1;
		cells[n++] = w = r;
		if (*r == '"') {
			for (r++;; r++) {
				if (!*r)
					return -1;
				if (*r == '"') {
					if (r[1] != '"')
						break;
					r++;
				}
				*w++ = *r;
			}
			r++;
			if (*r && *r != ',')
				return -1;
		} else {
			while (*r && *r != ',') {
				if (*r == '"')
					return -1;
				*w++ = *r++;
			}
		}
		if (!*r) {
			*w = '\0';
			return n;
		}
		*w = '\0';
		r++;
	}
}

static int is_number(const char *c)
{
	return *c && strspn(c, "0123456789.-+eE") == strlen(c);
}

static int csv_str(struct jsonw *jw, const char *key, const char *v, int nullable)
{
	jw_key(jw, key);
	jw_str(jw, nullable && !*v ? NULL : v);
	return 0;
}

static int csv_num(struct jsonw *jw, const char *key, const char *v, int nullable)
{
	if (key)
		jw_key(jw, key);
	if (!*v && nullable) {
		jw_raw(jw, "null");
		return 0;
	}
	if (!is_number(v))
		return -1;
	jw_raw(jw, v);
	return 0;
}

/* The entry bytes of a CSV row (cells in csv_header order). */
static int csv_entry(struct state *s, char **c)
{
	struct jsonw jw;
	int rc = 0;

	buf_reset(&s->entry);
	jw_init(&jw, &s->entry);
	jw_obj_open(&jw);
	/* the decision's canonical JSON as exported; any change shows in the hash */
	jw_kraw(&jw, "approval", *c[13] ? c[13] : "null");
	rc |= csv_num(&jw, "budget_remaining", c[10], 1);
	rc |= csv_str(&jw, "callee_id", c[5], 1);
	rc |= csv_str(&jw, "caller_id", c[4], 0);
	rc |= csv_num(&jw, "cost_usd", c[9], 0);
	rc |= csv_str(&jw, "decision", c[7], 0);
	rc |= csv_str(&jw, "delegation_id", c[3], 0);
	rc |= csv_num(&jw, "event_id", c[0], 0);
	rc |= csv_str(&jw, "org_id", c[2], 0);
	rc |= csv_str(&jw, "policy_ref", c[6], 1);
	rc |= csv_str(&jw, "status", c[8], 0);
	rc |= csv_str(&jw, "timestamp", c[1], 0);
	jw_key(&jw, "trust_delta");
	if (!*c[11] && !*c[12]) {
		jw_raw(&jw, "null");
	} else {
		jw_obj_open(&jw);
		rc |= csv_num(&jw, "after", c[12], 1);
		rc |= csv_num(&jw, "before", c[11], 1);
		jw_obj_close(&jw);
	}
	jw_obj_close(&jw);
	if (rc || jw.rc)
		return bad(s, s->next, "row %lld has a malformed number: entry %lld was changed",
			   (long long)s->line, (long long)s->next);
	return entry(s, s->entry.data, s->entry.len, c[14]);
}

/* ---- the checkpoint ------------------------------------------------------- */

static int tail(struct state *s, const char *json, size_t len)
{
	struct checkpoint cp;
	char err[200];
	merkle_hash root;
	json_t *o = NULL;
	char *inner = NULL;
	int rc;

	if (!s->csv) {
		o = json_loadb(json, len, 0, NULL);
		inner = json_dumps(json_object_get(o, "checkpoint"), 0);
		json_decref(o);
		if (!inner)
			return bad(s, 0, "the checkpoint line is malformed");
		json = inner;
		len = strlen(inner);
	}
	rc = checkpoint_parse(json, len, &cp, err, sizeof(err));
	free(inner);
	if (rc)
		return bad(s, 0, "the export's %s", err);
	s->done = 1;
	if (!checkpoint_verify(&cp, s->pk))
		return bad(s, 0, "the export's checkpoint is not signed by the given public key "
				 "(re-signed with another key?)");
	if (strcmp(cp.org_id, s->org_id))
		return bad(s, 0, "the checkpoint is for org %s, the export for %s", cp.org_id,
			   s->org_id);
	if (cp.tree_size != s->tree.size)
		return bad(s, 0, "the checkpoint covers %llu entries but the export has %llu "
				 "(entries removed or inserted)",
			   (unsigned long long)cp.tree_size, (unsigned long long)s->tree.size);
	merkle_frontier_root(&s->tree, root);
	if (memcmp(root, cp.root, 32))
		return bad(s, 0, "the entries do not hash to the signed root");
	return 0;
}

static int check_old(struct state *s)
{
	const struct checkpoint *o = s->old;

	s->line = 0;
	if (!checkpoint_verify(o, s->pk))
		return bad(s, 0, "the old checkpoint is not signed by the given public key");
	if (strcmp(o->org_id, s->org_id))
		return bad(s, 0, "the old checkpoint is for another org (%s)", o->org_id);
	if (o->tree_size > s->tree.size)
		return bad(s, (int64_t)s->tree.size + 1,
			   "the log was truncated: the old checkpoint covers %llu entries, the "
			   "export ends at %llu; entry %llu is the first missing",
			   (unsigned long long)o->tree_size, (unsigned long long)s->tree.size,
			   (unsigned long long)s->tree.size + 1);
	if (!s->have_old_root)
		return bad(s, 0, "the export starts after event %llu, the old checkpoint's size: "
				 "export from an earlier time to compare them",
			   (unsigned long long)o->tree_size);
	if (memcmp(s->old_root, o->root, 32))
		return bad(s, 0, "the first %llu entries are not those the old checkpoint signed "
				 "(changed, removed, reordered or inserted)",
			   (unsigned long long)o->tree_size);
	return 0;
}

/* ---- reading -------------------------------------------------------------- */

/* The file in blocks of READ_BUF bytes; lines are handed out in place. */
struct reader {
	FILE *f;
	char *buf; /* READ_BUF + 1 bytes: a line without its line end gets a NUL */
	size_t pos, end;
	int eof;
};

/* The next line with its '\n' (if any) at *line: its length, 0 at the end,
 * -1 when longer than the buffer. Moving the unread bytes to refill would
 * move the pending entries' bytes too: they are checked first. */
static ssize_t next_line(struct state *s, struct reader *r, char **line)
{
	char *nl;
	size_t got;

	for (;;) {
		nl = memchr(r->buf + r->pos, '\n', r->end - r->pos);
		if (nl || r->eof)
			break;
		if (flush(s))
			return -2;
		if (r->pos == 0 && r->end == READ_BUF)
			return -1;
		memmove(r->buf, r->buf + r->pos, r->end - r->pos);
		r->end -= r->pos;
		r->pos = 0;
		got = fread(r->buf + r->end, 1, READ_BUF - r->end, r->f);
		r->end += got;
		r->eof = got == 0;
	}
	*line = r->buf + r->pos;
	if (!nl) { /* the last line, without a line end */
		nl = r->buf + r->end - 1;
		r->buf[r->end] = '\0';
	}
	r->pos = (size_t)(nl - r->buf) + 1;
	return nl + 1 - *line;
}

/* One line (JSONL) or record (CSV, quoted line ends kept) without its line
 * end: *rec points into the reader's buffer or acc, NUL-terminated. Its
 * length, 0 at the end, -1 when too long, -2 when a pending entry is bad. */
static ssize_t next_record(struct state *s, struct reader *r, struct buf *acc, char **rec)
{
	char *line;
	ssize_t n = next_line(s, r, &line);
	int quotes = 0;

	*rec = line;
	if (n <= 0)
		return n;
	if (!s->csv || !memchr(line, '"', (size_t)n)) {
		while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
			line[--n] = '\0';
		return n > AUDIT_LINE_MAX ? -1 : n;
	}
	*rec = NULL;
	buf_reset(acc);
	for (;;) { /* a quoted cell may hold line ends: read on while one is open */
		for (ssize_t i = 0; i < n; i++)
			quotes ^= line[i] == '"';
		if (buf_add(acc, line, (size_t)n))
			return -1;
		if (!quotes)
			break;
		n = next_line(s, r, &line);
		if (n == -2)
			return -2;
		if (n <= 0)
			break;
	}
	while (acc->len && (acc->data[acc->len - 1] == '\n' || acc->data[acc->len - 1] == '\r'))
		acc->len--;
	if (buf_add(acc, "", 1))
		return -1;
	acc->len--;
	*rec = acc->data;
	return (ssize_t)acc->len;
}

static int record(struct state *s, char *rec, size_t len)
{
	char *c[CSV_COLS];
	int n;

	if (!s->csv) {
		if (s->line == 1)
			return header(s, rec, len);
		if (!strncmp(rec, "{\"checkpoint\":", 14))
			return flush(s) ? -1 : tail(s, rec, len);
		return jsonl_entry(s, rec, len);
	}
	if (s->line == 2)
		return strcmp(rec, csv_header) ? bad(s, 0, "the CSV header row is not the export's")
					       : 0;
	n = csv_split(rec, c, CSV_COLS);
	if (n == 2 && s->line == 1 && !strcmp(c[0], "export"))
		return header(s, c[1], strlen(c[1]));
	if (n == 2 && !strcmp(c[0], "checkpoint"))
		return tail(s, c[1], strlen(c[1]));
	if (n != CSV_COLS || s->line == 1)
		return bad(s, s->next, "row %lld is malformed (entry %lld changed or inserted?)",
			   (long long)s->line, (long long)s->next);
	return csv_entry(s, c);
}

int audit_verify_stream(FILE *f, const unsigned char pk[CHECKPOINT_PK_LEN],
			const struct checkpoint *old, struct audit_verify_result *out)
{
	struct state s = {.res = out, .pk = pk, .old = old};
	struct reader r = {.f = f, .buf = malloc(READ_BUF + 1)};
	struct buf acc;
	char *rec;
	ssize_t n;
	int rc = 0, c = fgetc(f);

	memset(out, 0, sizeof(*out));
	if (!r.buf) {
		snprintf(out->message, sizeof(out->message), "out of memory");
		return -1;
	}
	s.csv = c != '{';
	if (c != EOF)
		ungetc(c, f);
	buf_init(&acc, AUDIT_LINE_MAX + 1);
	buf_init(&s.entry, AUDIT_LINE_MAX + 1);
	while (!rc) {
		n = next_record(&s, &r, &acc, &rec);
		if (n == 0)
			break;
		if (n == -2) { /* an entry before this line is bad */
			rc = -1;
			break;
		}
		s.line++;
		if (s.done) {
			rc = bad(&s, 0, "line %lld comes after the checkpoint", (long long)s.line);
			break;
		}
		if (n < 0) {
			rc = flush(&s) ? -1 : bad(&s, s.next, "line %lld is too long", (long long)s.line);
			break;
		}
		rc = record(&s, rec, (size_t)n);
	}
	if (!rc)
		rc = flush(&s);
	if (!rc && s.line == 0)
		rc = bad(&s, 0, "the file is empty");
	if (!rc && !s.done)
		rc = bad(&s, s.next, "the export ends after event %lld without its checkpoint "
				     "(truncated)", (long long)s.next - 1);
	if (!rc && old)
		rc = check_old(&s);
	out->tree_size = s.tree.size;
	free(r.buf);
	buf_release(&acc);
	buf_release(&s.entry);
	return rc;
}
