// depends: a recursive-descent parser for `depends` conditions into a
// flat node array, and their evaluation (depends.h).
//
// A separate little language rather than `when`'s: its terms are step
// end states, not paths into a document, and what it names is the
// dependency set, so the parser must know every name; `when` could not
// tell a.failed (a state) from a field called failed.
#include "depends.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"

enum depends_op { DEP_TERM, DEP_NOT, DEP_AND, DEP_OR };

// What a term matches: a set of step states, as bits.
#define DEP_BIT(s) (1u << (s))

typedef struct depends_node {
	enum depends_op op;
	int             a, b;   // operand nodes (NOT: a only), -1 none
	char           *name;   // TERM: the step id (owned)
	unsigned        states; // TERM: the states that make it true
} depends_node;

struct weft_depends {
	depends_node *nodes; // nodes[root] is the whole expression (owned)
	size_t        n, cap;
	int           root;
};

typedef struct depends_parser {
	weft_depends *d;
	const char   *src;
	size_t        pos;
	unsigned      depth;
	char         *err;
	size_t        errlen;
} depends_parser;

static const struct {
	const char *word;
	unsigned    states;
} depends_states[] = {
	{ "succeeded", DEP_BIT(WEFT_STEP_SUCCEEDED) },
	{ "failed", DEP_BIT(WEFT_STEP_FAILED) },
	{ "upstream_failed", DEP_BIT(WEFT_STEP_UPSTREAM_FAILED) },
	{ "skipped", DEP_BIT(WEFT_STEP_SKIPPED) },
	{ "cancelled", DEP_BIT(WEFT_STEP_CANCELLED) },
	{ "done",
	    DEP_BIT(WEFT_STEP_SUCCEEDED) | DEP_BIT(WEFT_STEP_FAILED) |
	        DEP_BIT(WEFT_STEP_UPSTREAM_FAILED) |
	        DEP_BIT(WEFT_STEP_SKIPPED) | DEP_BIT(WEFT_STEP_CANCELLED) },
};

#define DEPENDS_NSTATES (sizeof(depends_states) / sizeof(depends_states[0]))

static int depends_or(depends_parser *p);

// depends_fail writes "col N: what" (N the 1-based byte column of pos).
static weft_err
depends_fail(depends_parser *p, size_t pos, const char *fmt, const char *arg)
{
	int n = snprintf(p->err, p->errlen, "col %zu: ", pos + 1);

	if (n >= 0 && (size_t) n < p->errlen) {
		snprintf(p->err + n, p->errlen - (size_t) n, fmt, arg);
	}
	return (WEFT_EINVAL);
}

static void
depends_skip_space(depends_parser *p)
{
	while (p->src[p->pos] == ' ' || p->src[p->pos] == '\t' ||
	    p->src[p->pos] == '\n' || p->src[p->pos] == '\r') {
		p->pos++;
	}
}

static bool
depends_id_char(char ch)
{
	return ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
	    (ch >= '0' && ch <= '9') || ch == '_' || ch == '-');
}

static int
depends_node_add(depends_parser *p, enum depends_op op, int a, int b)
{
	weft_depends *d = p->d;

	if (d->n == d->cap) {
		d->cap   = d->cap ? d->cap * 2 : 16;
		d->nodes = weft_xrealloc(d->nodes, d->cap * sizeof(*d->nodes));
	}
	d->nodes[d->n] = (depends_node) { op, a, b, NULL, 0 };
	return ((int) d->n++);
}

// depends_term parses STEP or STEP.STATE; -1 with err set on error.
static int
depends_term(depends_parser *p)
{
	size_t   start = p->pos, dot, end;
	unsigned states = DEP_BIT(WEFT_STEP_SUCCEEDED) |
	    DEP_BIT(WEFT_STEP_SKIPPED); // a bare name: Argo's meaning
	char     word[24];
	int      k;

	while (depends_id_char(p->src[p->pos])) {
		p->pos++;
	}
	if (p->pos == start || p->pos - start > 128) {
		char got[2] = { p->src[start], '\0' };
		if (p->pos != start) {
			depends_fail(p, start, "a step id is 1-128 characters%s", "");
		} else if (got[0] == '\0') {
			depends_fail(p, start, "expected a step name, got the end%s", "");
		} else {
			depends_fail(p, start, "expected a step name, got \"%s\"", got);
		}
		return (-1);
	}
	end = p->pos;
	if (p->src[p->pos] == '.') {
		dot = ++p->pos;
		// Letters of either case, so "Succeeded" (Argo's spelling) is
		// named in the error rather than cut short.
		while ((p->src[p->pos] >= 'a' && p->src[p->pos] <= 'z') ||
		    (p->src[p->pos] >= 'A' && p->src[p->pos] <= 'Z') ||
		    p->src[p->pos] == '_') {
			p->pos++;
		}
		snprintf(word, sizeof(word), "%.*s",
		    (int) (p->pos - dot < sizeof(word) - 1 ? p->pos - dot
		                                            : sizeof(word) - 1),
		    p->src + dot);
		for (states = 0, k = 0; k < (int) DEPENDS_NSTATES; k++) {
			if (p->pos - dot == strlen(depends_states[k].word) &&
			    strcmp(word, depends_states[k].word) == 0) {
				states = depends_states[k].states;
			}
		}
		if (states == 0) {
			depends_fail(p, dot,
			    "unknown state \"%s\" (want succeeded, failed, "
			    "upstream_failed, skipped, cancelled or done)",
			    word);
			return (-1);
		}
	}
	k = depends_node_add(p, DEP_TERM, -1, -1);
	p->d->nodes[k].name = weft_xalloc(end - start + 1);
	memcpy(p->d->nodes[k].name, p->src + start, end - start);
	p->d->nodes[k].states = states;
	return (k);
}

// depends_unary parses ! unary | ( or ) | term.
static int
depends_unary(depends_parser *p)
{
	int    a;
	size_t open;

	depends_skip_space(p);
	if (p->src[p->pos] != '!' && p->src[p->pos] != '(') {
		return (depends_term(p));
	}
	// Each ! and ( is a level: the recursion, here and in eval, is
	// bounded by them (and && || chains by the text's length).
	if (++p->depth > WEFT_DEPENDS_MAX_DEPTH) {
		depends_fail(p, p->pos, "nested too deep (over %s levels)", "64");
		return (-1);
	}
	if (p->src[p->pos] == '!') {
		p->pos++;
		if ((a = depends_unary(p)) < 0) {
			return (-1);
		}
		a = depends_node_add(p, DEP_NOT, a, -1);
	} else {
		open = p->pos++; // '('
		if ((a = depends_or(p)) < 0) {
			return (-1);
		}
		depends_skip_space(p);
		if (p->src[p->pos] != ')') {
			depends_fail(p, open, "unclosed \"(\"%s", "");
			return (-1);
		}
		p->pos++;
	}
	p->depth--;
	return (a);
}

// depends_binary parses operands joined by op ("&&" or "||"), each
// parsed by sub, into a left-leaning tree.
static int
depends_binary(depends_parser *p, const char *op, enum depends_op kind,
    int (*sub)(depends_parser *))
{
	int a, b;

	if ((a = sub(p)) < 0) {
		return (-1);
	}
	for (;;) {
		depends_skip_space(p);
		if (strncmp(p->src + p->pos, op, 2) != 0) {
			return (a);
		}
		p->pos += 2;
		if ((b = sub(p)) < 0) {
			return (-1);
		}
		a = depends_node_add(p, kind, a, b);
	}
}

static int
depends_and(depends_parser *p)
{
	return (depends_binary(p, "&&", DEP_AND, depends_unary));
}

static int
depends_or(depends_parser *p)
{
	return (depends_binary(p, "||", DEP_OR, depends_and));
}

weft_err
weft_depends_compile(
    weft_depends **out, const char *src, char *err, size_t errlen)
{
	depends_parser p = { NULL, src, 0, 0, err, errlen };
	size_t         len = strlen(src);
	char           got[8];

	*out = NULL;
	if (len > WEFT_DEPENDS_MAX_BYTES) {
		snprintf(err, errlen, "longer than %u bytes",
		    WEFT_DEPENDS_MAX_BYTES);
		return (WEFT_ETOOBIG);
	}
	p.d = weft_xalloc(sizeof(*p.d));
	if ((p.d->root = depends_or(&p)) < 0) {
		weft_depends_free(p.d);
		return (WEFT_EINVAL);
	}
	depends_skip_space(&p);
	if (p.src[p.pos] != '\0') {
		snprintf(got, sizeof(got), "%.4s", p.src + p.pos);
		depends_fail(&p, p.pos,
		    "unexpected \"%s\" (want && or || between terms)", got);
		weft_depends_free(p.d);
		return (WEFT_EINVAL);
	}
	*out = p.d;
	return (WEFT_OK);
}

json_t *
weft_depends_names(const weft_depends *d)
{
	json_t *seen  = json_object();
	json_t *names = json_array();

	for (size_t k = 0; k < d->n; k++) {
		const char *name = d->nodes[k].name;
		if (d->nodes[k].op == DEP_TERM &&
		    json_object_get(seen, name) == NULL) {
			json_object_set_new(seen, name, json_true());
			json_array_append_new(names, json_string(name));
		}
	}
	json_decref(seen);
	return (names);
}

json_t *
weft_depends_step_deps(const json_t *def_step)
{
	json_t       *on  = json_object_get(def_step, "depends_on");
	const char   *src = json_string_value(json_object_get(def_step, "depends"));
	weft_depends *d;
	json_t       *names;
	char          err[200];

	if (json_is_array(on)) {
		return (json_incref(on));
	}
	if (src == NULL ||
	    weft_depends_compile(&d, src, err, sizeof(err)) != WEFT_OK) {
		return (json_array());
	}
	names = weft_depends_names(d);
	weft_depends_free(d);
	return (names);
}

// depends_eval_node evaluates node k, && and || short-circuiting. The
// recursion is bounded by the text: at most one node per 2 bytes of its
// 4096.
static bool
depends_eval_node(const weft_depends *d, int k, weft_depends_state_fn fn,
    void *arg)
{
	const depends_node  *n = &d->nodes[k];
	enum weft_step_state st;

	switch (n->op) {
	case DEP_TERM:
		st = fn(arg, n->name);
		return ((unsigned) st < 32 && (n->states & DEP_BIT(st)) != 0);
	case DEP_NOT:
		return (!depends_eval_node(d, n->a, fn, arg));
	case DEP_AND:
		return (depends_eval_node(d, n->a, fn, arg) &&
		    depends_eval_node(d, n->b, fn, arg));
	default:
		return (depends_eval_node(d, n->a, fn, arg) ||
		    depends_eval_node(d, n->b, fn, arg));
	}
}

bool
weft_depends_eval(const weft_depends *d, weft_depends_state_fn fn, void *arg)
{
	return (depends_eval_node(d, d->root, fn, arg));
}

void
weft_depends_free(weft_depends *d)
{
	if (d == NULL) {
		return;
	}
	for (size_t k = 0; k < d->n; k++) {
		free(d->nodes[k].name);
	}
	free(d->nodes);
	free(d);
}
