// expr: lexer, recursive-descent parser and evaluator of `when` conditions.
//
// The AST lives in one node array owned by the weft_expr; children are
// indices into it, so freeing is a flat loop and a half-built tree after a
// syntax error needs no special care.
#include "expr.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"

enum expr_tok {
	TOK_END,
	TOK_NUM,  // integer or real literal, value in tok.val
	TOK_STR,  // string literal, value in tok.val
	TOK_PATH, // identifier or dotted path, text in tok.start/len
	TOK_LPAREN,
	TOK_RPAREN,
	TOK_COMMA,
	TOK_NOT,
	TOK_AND,
	TOK_OR,
	TOK_EQ,
	TOK_NE,
	TOK_LT,
	TOK_LE,
	TOK_GT,
	TOK_GE,
};

enum expr_kind {
	EXPR_LIT,      // lit
	EXPR_PATH,     // segs[0..nsegs)
	EXPR_NOT,      // !a
	EXPR_AND,      // a && b
	EXPR_OR,       // a || b
	EXPR_CMP,      // a op b
	EXPR_LENGTH,   // length(a)
	EXPR_CONTAINS, // contains(a, b)
};

struct expr_node {
	enum expr_kind kind;
	enum expr_tok  op;   // EXPR_CMP: TOK_EQ .. TOK_GE
	int            col;  // 1-based source column of the node
	json_t        *lit;  // EXPR_LIT value (owned)
	char         **segs; // EXPR_PATH segments (owned, each owned)
	size_t         nsegs;
	int            a; // first operand (node index), -1 if none
	int            b; // second operand (node index), -1 if none
};

struct weft_expr {
	struct expr_node *nodes; // arena; nodes[root] is the whole expression
	size_t            n;
	size_t            cap;
	int               root;
};

struct expr_token {
	enum expr_tok kind;
	int           col;   // 1-based column of the first byte
	const char   *start; // source text of the token
	size_t        len;
	json_t       *val; // TOK_NUM/TOK_STR value (owned until taken)
};

struct expr_parser {
	const char       *src;
	size_t            len;
	size_t            pos; // next byte to lex
	struct expr_token tok; // current token
	weft_expr        *e;
	unsigned          depth; // current nesting, see WEFT_EXPR_MAX_DEPTH
	char             *err;
	size_t            errlen;
	bool              failed; // an error is in err; unwind
};

// An evaluated value: a borrowed JSON value (from the document, the AST or a
// jansson singleton), or an owned one when a function produced it.
struct expr_val {
	json_t *j;     // NULL means a path that resolved to nothing
	bool    owned; // j must be decref'd
};

// ---- errors and the node arena ----

// expr_fail records the first error as "col N: ..." and returns -1, the
// "no node" index every parse function returns on failure.
static int
expr_fail(struct expr_parser *p, int col, const char *fmt, ...)
{
	va_list ap;
	char    msg[256];

	va_start(ap, fmt);
	// clang-tidy 14 reports ap as uninitialized here, but only with some
	// check sets enabled; it is a false positive of the analyzer.
	// NOLINTNEXTLINE(clang-analyzer-valist.Uninitialized)
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (!p->failed) {
		p->failed = true;
		snprintf(p->err, p->errlen, "col %d: %s", col, msg);
	}
	return (-1);
}

// expr_node_new appends a node and returns its index.
static int
expr_node_new(struct expr_parser *p, enum expr_kind kind, int col)
{
	weft_expr        *e = p->e;
	struct expr_node *nd;

	if (e->n == e->cap) {
		e->cap   = e->cap ? e->cap * 2 : 16;
		e->nodes = weft_xrealloc(e->nodes, e->cap * sizeof(*e->nodes));
	}
	nd = &e->nodes[e->n];
	memset(nd, 0, sizeof(*nd));
	nd->kind = kind;
	nd->col  = col;
	nd->a    = -1;
	nd->b    = -1;
	return ((int) e->n++);
}

void
weft_expr_free(weft_expr *e)
{
	if (e == NULL) {
		return;
	}
	for (size_t i = 0; i < e->n; i++) {
		json_decref(e->nodes[i].lit);
		for (size_t k = 0; k < e->nodes[i].nsegs; k++) {
			free(e->nodes[i].segs[k]);
		}
		free(e->nodes[i].segs);
	}
	free(e->nodes);
	free(e);
}

// ---- lexer ----

static bool
expr_is_name_char(char c)
{
	return (isalnum((unsigned char) c) || c == '_' || c == '-');
}

// expr_lex_number scans -?D+(.D+)?([eE][+-]?D+)? at p->pos.
static void
expr_lex_number(struct expr_parser *p, struct expr_token *t)
{
	const char *s    = p->src;
	size_t      i    = p->pos + (s[p->pos] == '-');
	bool        real = false;
	char       *text;

	while (isdigit((unsigned char) s[i])) {
		i++;
	}
	if (s[i] == '.' && isdigit((unsigned char) s[i + 1])) {
		real = true;
		for (i++; isdigit((unsigned char) s[i]); i++) { }
	}
	if ((s[i] == 'e' || s[i] == 'E') &&
	    (isdigit((unsigned char) s[i + 1]) ||
	        ((s[i + 1] == '+' || s[i + 1] == '-') &&
	            isdigit((unsigned char) s[i + 2])))) {
		real = true;
		for (i += 2; isdigit((unsigned char) s[i]); i++) { }
	}
	if (expr_is_name_char(s[i]) || s[i] == '.') {
		expr_fail(p, t->col, "malformed number");
		return;
	}
	text  = weft_xstrndup(s + p->pos, i - p->pos);
	errno = 0;
	if (real) {
		double d = strtod(text, NULL);
		t->val   = isfinite(d) ? json_real(d) : NULL;
	} else {
		long long v = strtoll(text, NULL, 10);
		t->val      = errno == ERANGE ? NULL : json_integer(v);
	}
	free(text);
	if (t->val == NULL) {
		expr_fail(p, t->col, "number out of range");
		return;
	}
	t->kind = TOK_NUM;
	p->pos  = i;
}

// expr_lex_string scans a "..." literal with \" and \\ escapes.
static void
expr_lex_string(struct expr_parser *p, struct expr_token *t)
{
	const char *s   = p->src;
	char       *buf = weft_xalloc(p->len + 1);
	size_t      n   = 0;
	size_t      i   = p->pos + 1;

	for (; s[i] != '"'; i++) {
		if (s[i] == '\0') {
			expr_fail(p, t->col, "unterminated string");
			goto done;
		}
		if (s[i] == '\\') {
			if (s[i + 1] != '"' && s[i + 1] != '\\') {
				expr_fail(p, (int) i + 1,
				    "unknown escape (only \\\" and \\\\)");
				goto done;
			}
			i++;
		}
		buf[n++] = s[i];
	}
	if ((t->val = json_stringn(buf, n)) == NULL) {
		expr_fail(p, t->col, "string is not valid UTF-8");
		goto done;
	}
	t->kind = TOK_STR;
	p->pos  = i + 1;
done:
	free(buf);
}

// expr_lex_path scans name(.name)* where the first name starts with a
// letter or '_' and later ones may start with a digit (array indices).
static void
expr_lex_path(struct expr_parser *p, struct expr_token *t)
{
	const char *s = p->src;
	size_t      i = p->pos;

	for (;;) {
		while (expr_is_name_char(s[i])) {
			i++;
		}
		// "[*]" after a name maps the rest of the path over the
		// elements of the array there (steps.m.output[*].score).
		while (strncmp(s + i, "[*]", 3) == 0) {
			i += 3;
		}
		if (s[i] == '[') {
			expr_fail(p, (int) i + 1,
			    "expected \"[*]\" (index an array with .N)");
			return;
		}
		if (s[i] != '.') {
			break;
		}
		if (!expr_is_name_char(s[++i])) {
			expr_fail(p, (int) i + 1, "expected a name after '.'");
			return;
		}
	}
	t->kind = TOK_PATH;
	t->len  = i - p->pos;
	p->pos  = i;
}

// expr_lex_op scans punctuation; two-byte operators first.
static void
expr_lex_op(struct expr_parser *p, struct expr_token *t)
{
	static const struct {
		const char   *text;
		enum expr_tok kind;
	} ops[]       = { { "==", TOK_EQ }, { "!=", TOK_NE }, { "<=", TOK_LE },
		      { ">=", TOK_GE }, { "&&", TOK_AND }, { "||", TOK_OR },
		      { "<", TOK_LT }, { ">", TOK_GT }, { "!", TOK_NOT },
		      { "(", TOK_LPAREN }, { ")", TOK_RPAREN }, { ",", TOK_COMMA } };
	const char *s = p->src + p->pos;

	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
		size_t n = strlen(ops[i].text);
		if (strncmp(s, ops[i].text, n) == 0) {
			t->kind = ops[i].kind;
			t->len  = n;
			p->pos += n;
			return;
		}
	}
	if (*s == '=' || *s == '&' || *s == '|') {
		expr_fail(p, t->col, "unexpected '%c'; did you mean '%c%c'?",
		    *s, *s, *s);
	} else if (isprint((unsigned char) *s)) {
		expr_fail(p, t->col, "unexpected character '%c'", *s);
	} else {
		expr_fail(p, t->col, "unexpected byte 0x%02x",
		    (unsigned) (unsigned char) *s);
	}
}

// expr_lex reads the next token into p->tok; false on a lexical error.
static bool
expr_lex(struct expr_parser *p)
{
	struct expr_token *t = &p->tok;
	const char        *s = p->src;

	json_decref(t->val);
	memset(t, 0, sizeof(*t));
	while (s[p->pos] == ' ' || s[p->pos] == '\t' || s[p->pos] == '\n' ||
	    s[p->pos] == '\r') {
		p->pos++;
	}
	t->col   = (int) p->pos + 1;
	t->start = s + p->pos;
	if (s[p->pos] == '\0') {
		t->kind = TOK_END;
	} else if (isdigit((unsigned char) s[p->pos]) ||
	    (s[p->pos] == '-' && isdigit((unsigned char) s[p->pos + 1]))) {
		expr_lex_number(p, t);
	} else if (s[p->pos] == '"') {
		expr_lex_string(p, t);
	} else if (isalpha((unsigned char) s[p->pos]) || s[p->pos] == '_') {
		expr_lex_path(p, t);
	} else {
		expr_lex_op(p, t);
	}
	t->len = (size_t) (s + p->pos - t->start);
	return (!p->failed);
}

// ---- parser ----

static int expr_parse_or(struct expr_parser *p);

// expr_tok_is reports whether the current token is a path spelled word.
static bool
expr_tok_is(const struct expr_token *t, const char *word)
{
	return (t->kind == TOK_PATH && t->len == strlen(word) &&
	    strncmp(t->start, word, t->len) == 0);
}

// expr_expect consumes a token of kind k or fails with "expected 'what'".
static bool
expr_expect(struct expr_parser *p, enum expr_tok k, const char *what)
{
	if (p->tok.kind != k) {
		expr_fail(p, p->tok.col, "expected '%s'", what);
		return (false);
	}
	return (expr_lex(p));
}

// expr_parse_call parses the argument list of function `name` (the current
// token is the '(' after it) into a LENGTH or CONTAINS node.
static int
expr_parse_call(struct expr_parser *p, const char *name, size_t nlen, int col)
{
	enum expr_kind kind;
	int            args[3] = { -1, -1, -1 };
	int            nargs   = 0;
	int            want;
	int            i;

	if (nlen == 6 && strncmp(name, "length", 6) == 0) {
		kind = EXPR_LENGTH;
		want = 1;
	} else if (nlen == 8 && strncmp(name, "contains", 8) == 0) {
		kind = EXPR_CONTAINS;
		want = 2;
	} else {
		return (expr_fail(
		    p, col, "unknown function \"%.*s\"", (int) nlen, name));
	}
	if (!expr_lex(p)) {
		return (-1);
	}
	// Arguments: none, or expressions separated by commas (no trailing
	// comma).
	while (p->tok.kind != TOK_RPAREN || nargs > 0) {
		if ((args[nargs < 2 ? nargs : 2] = expr_parse_or(p)) < 0) {
			return (-1);
		}
		nargs++;
		if (p->tok.kind == TOK_RPAREN) {
			break;
		}
		if (p->tok.kind != TOK_COMMA) {
			return (
			    expr_fail(p, p->tok.col, "expected ',' or ')'"));
		}
		if (!expr_lex(p)) {
			return (-1);
		}
	}
	if (nargs != want) {
		return (expr_fail(p, col, "%.*s() takes %d argument%s, got %d",
		    (int) nlen, name, want, want == 1 ? "" : "s", nargs));
	}
	if (!expr_lex(p)) {
		return (-1);
	}
	i                = expr_node_new(p, kind, col);
	p->e->nodes[i].a = args[0];
	p->e->nodes[i].b = args[1];
	return (i);
}

// expr_root_ok says the path s[0..len) starts with a name a step's
// document has: input, params, steps, and a map item's item and index.
static bool
expr_root_ok(const char *s, size_t len)
{
	static const char *const roots[] = { "input", "params", "steps",
		"item", "index", NULL };
	size_t                   n       = 0;

	while (n < len && expr_is_name_char(s[n])) {
		n++;
	}
	for (size_t i = 0; roots[i] != NULL; i++) {
		if (n == strlen(roots[i]) && strncmp(s, roots[i], n) == 0) {
			return (true);
		}
	}
	return (false);
}

// expr_path_seg appends segment seg (taken) to path node nd.
static void
expr_path_seg(struct expr_node *nd, char *seg)
{
	nd->segs = weft_xrealloc(nd->segs, (nd->nsegs + 1) * sizeof(char *));
	nd->segs[nd->nsegs++] = seg;
}

// expr_parse_path turns the current TOK_PATH into a PATH node, checking the
// root name so typos ("step.a") fail here instead of being silently false.
static int
expr_parse_path(struct expr_parser *p)
{
	struct expr_token *t = &p->tok;
	struct expr_node  *nd;
	const char        *s   = t->start;
	const char        *end = t->start + t->len;
	int                i;

	if (!expr_root_ok(s, t->len)) {
		return (expr_fail(p, t->col,
		    "unknown name \"%.*s\" (paths start with input, params, "
		    "steps, or in a map step item or index)",
		    (int) t->len, s));
	}
	i  = expr_node_new(p, EXPR_PATH, t->col);
	nd = &p->e->nodes[i];
	// Segments split at dots, and each "[*]" is a segment of its own
	// (names never hold '['): "output[*]" is "output", "[*]".
	while (s < end) {
		const char *dot = memchr(s, '.', (size_t) (end - s));
		size_t      n   = dot ? (size_t) (dot - s) : (size_t) (end - s);
		const char *br  = memchr(s, '[', n);
		size_t      m   = br ? (size_t) (br - s) : n;
		if (m > 0) {
			expr_path_seg(nd, weft_xstrndup(s, m));
		}
		for (size_t k = m; k + 3 <= n; k += 3) {
			expr_path_seg(nd, weft_xstrdup("[*]"));
		}
		s += n + 1;
	}
	return (expr_lex(p) ? i : -1);
}

// expr_parse_name handles a TOK_PATH: keyword literal, call or path.
static int
expr_parse_name(struct expr_parser *p)
{
	struct expr_token t = p->tok;
	int               i;

	if (expr_tok_is(&t, "true") || expr_tok_is(&t, "false") ||
	    expr_tok_is(&t, "null")) {
		i                  = expr_node_new(p, EXPR_LIT, t.col);
		p->e->nodes[i].lit = t.start[0] == 't' ? json_true()
		    : t.start[0] == 'f'                ? json_false()
		                                       : json_null();
		return (expr_lex(p) ? i : -1);
	}
	// A call is a bare name followed by '('; peek without consuming.
	for (size_t k = p->pos; p->src[k] != '\0'; k++) {
		if (p->src[k] == '(') {
			p->pos = k;
			if (!expr_lex(p)) {
				return (-1);
			}
			return (expr_parse_call(p, t.start, t.len, t.col));
		}
		if (!isspace((unsigned char) p->src[k])) {
			break;
		}
	}
	return (expr_parse_path(p));
}

// expr_parse_primary parses a literal, path, call or parenthesised
// expression.
static int
expr_parse_primary(struct expr_parser *p)
{
	int i;

	switch (p->tok.kind) {
	case TOK_NUM:
	case TOK_STR:
		i                  = expr_node_new(p, EXPR_LIT, p->tok.col);
		p->e->nodes[i].lit = p->tok.val;
		p->tok.val         = NULL;
		return (expr_lex(p) ? i : -1);
	case TOK_PATH:
		return (expr_parse_name(p));
	case TOK_LPAREN:
		if (!expr_lex(p) || (i = expr_parse_or(p)) < 0 ||
		    !expr_expect(p, TOK_RPAREN, ")")) {
			return (-1);
		}
		return (i);
	case TOK_END:
		return (
		    expr_fail(p, p->tok.col, "unexpected end of expression"));
	default:
		return (expr_fail(p, p->tok.col, "expected a value, got '%.*s'",
		    (int) p->tok.len, p->tok.start));
	}
}

// expr_parse_unary parses '!'* primary; every level counts toward the depth
// limit, and so does each parenthesis or call through expr_parse_or.
static int
expr_parse_unary(struct expr_parser *p)
{
	int col = p->tok.col;
	int i;
	int a;

	if (++p->depth > WEFT_EXPR_MAX_DEPTH) {
		return (expr_fail(p, col, "expression nested deeper than %u",
		    WEFT_EXPR_MAX_DEPTH));
	}
	if (p->tok.kind != TOK_NOT) {
		a = expr_parse_primary(p);
		p->depth--;
		return (a);
	}
	if (!expr_lex(p) || (a = expr_parse_unary(p)) < 0) {
		return (-1);
	}
	i                = expr_node_new(p, EXPR_NOT, col);
	p->e->nodes[i].a = a;
	p->depth--;
	return (i);
}

static bool
expr_is_cmp(enum expr_tok k)
{
	return (k >= TOK_EQ && k <= TOK_GE);
}

// expr_parse_cmp parses unary (op unary)?; comparisons do not chain.
static int
expr_parse_cmp(struct expr_parser *p)
{
	enum expr_tok op;
	int           col;
	int           a;
	int           b;
	int           i;

	if ((a = expr_parse_unary(p)) < 0 || !expr_is_cmp(p->tok.kind)) {
		return (a);
	}
	op  = p->tok.kind;
	col = p->tok.col;
	if (!expr_lex(p) || (b = expr_parse_unary(p)) < 0) {
		return (-1);
	}
	if (expr_is_cmp(p->tok.kind)) {
		return (expr_fail(p, p->tok.col,
		    "comparisons do not chain; combine them with &&"));
	}
	i                 = expr_node_new(p, EXPR_CMP, col);
	p->e->nodes[i].op = op;
	p->e->nodes[i].a  = a;
	p->e->nodes[i].b  = b;
	return (i);
}

// expr_parse_chain parses sub (tok sub)* into a left-leaning kind tree.
static int
expr_parse_chain(struct expr_parser *p, enum expr_tok tok, enum expr_kind kind,
    int (*sub)(struct expr_parser *))
{
	int a;

	if ((a = sub(p)) < 0) {
		return (-1);
	}
	while (p->tok.kind == tok) {
		int col = p->tok.col;
		int b;
		int i;
		if (!expr_lex(p) || (b = sub(p)) < 0) {
			return (-1);
		}
		i                = expr_node_new(p, kind, col);
		p->e->nodes[i].a = a;
		p->e->nodes[i].b = b;
		a                = i;
	}
	return (a);
}

static int
expr_parse_and(struct expr_parser *p)
{
	return (expr_parse_chain(p, TOK_AND, EXPR_AND, expr_parse_cmp));
}

static int
expr_parse_or(struct expr_parser *p)
{
	return (expr_parse_chain(p, TOK_OR, EXPR_OR, expr_parse_and));
}

weft_err
weft_expr_compile(weft_expr **out, const char *src, char *err, size_t errlen)
{
	struct expr_parser p;
	size_t             len = strlen(src);

	*out = NULL;
	if (len > WEFT_EXPR_MAX_BYTES) {
		snprintf(err, errlen, "expression is %zu bytes, limit is %u",
		    len, WEFT_EXPR_MAX_BYTES);
		return (WEFT_ETOOBIG);
	}
	memset(&p, 0, sizeof(p));
	p.src    = src;
	p.len    = len;
	p.err    = err;
	p.errlen = errlen;
	p.e      = weft_xalloc(sizeof(*p.e));
	if (expr_lex(&p) && (p.e->root = expr_parse_or(&p)) >= 0 &&
	    p.tok.kind != TOK_END) {
		expr_fail(&p, p.tok.col,
		    "unexpected '%.*s' after the expression", (int) p.tok.len,
		    p.tok.start);
	}
	json_decref(p.tok.val);
	if (p.failed) {
		weft_expr_free(p.e);
		return (WEFT_EINVAL);
	}
	*out = p.e;
	return (WEFT_OK);
}

// ---- evaluation ----

static struct expr_val expr_eval_node(const weft_expr *e, int i, json_t *doc);

static void
expr_val_drop(struct expr_val v)
{
	if (v.owned) {
		json_decref(v.j);
	}
}

static struct expr_val
expr_val_bool(bool b)
{
	struct expr_val v = { json_boolean(b), false };
	return (v);
}

// expr_truthy: false, null, missing, 0, "", [] and {} are false.
static bool
expr_truthy(const json_t *j)
{
	switch (j == NULL ? JSON_NULL : json_typeof(j)) {
	case JSON_OBJECT:
		return (json_object_size(j) > 0);
	case JSON_ARRAY:
		return (json_array_size(j) > 0);
	case JSON_STRING:
		return (json_string_length(j) > 0);
	case JSON_INTEGER:
		return (json_integer_value(j) != 0);
	case JSON_REAL:
		return (json_real_value(j) != 0.0);
	case JSON_TRUE:
		return (true);
	default:
		return (false);
	}
}

// expr_num_cmp orders two JSON numbers; integers compare exactly.
static int
expr_num_cmp(const json_t *a, const json_t *b)
{
	if (json_is_integer(a) && json_is_integer(b)) {
		json_int_t x = json_integer_value(a);
		json_int_t y = json_integer_value(b);
		return ((x > y) - (x < y));
	}
	double x = json_number_value(a);
	double y = json_number_value(b);
	return ((x > y) - (x < y));
}

// expr_str_cmp orders two JSON strings bytewise (embedded NULs allowed).
static int
expr_str_cmp(const json_t *a, const json_t *b)
{
	size_t la = json_string_length(a);
	size_t lb = json_string_length(b);
	int    c  = memcmp(
	        json_string_value(a), json_string_value(b), la < lb ? la : lb);

	if (c != 0) {
		return (c < 0 ? -1 : 1);
	}
	return ((la > lb) - (la < lb));
}

// expr_equal: numbers numerically (1 == 1.0), anything else structurally;
// a missing value equals null.
static bool
expr_equal(const json_t *a, const json_t *b)
{
	a = a ? a : json_null();
	b = b ? b : json_null();
	if (json_is_number(a) && json_is_number(b)) {
		return (expr_num_cmp(a, b) == 0);
	}
	return (json_equal(a, b) != 0);
}

// expr_compare applies op; ordering across types (or of non-scalars) is
// false rather than an error, so conditions on absent data just skip.
static bool
expr_compare(enum expr_tok op, const json_t *a, const json_t *b)
{
	int c;

	if (op == TOK_EQ || op == TOK_NE) {
		return (expr_equal(a, b) == (op == TOK_EQ));
	}
	if (json_is_number(a) && json_is_number(b)) {
		c = expr_num_cmp(a, b);
	} else if (json_is_string(a) && json_is_string(b)) {
		c = expr_str_cmp(a, b);
	} else {
		return (false);
	}
	switch (op) {
	case TOK_LT:
		return (c < 0);
	case TOK_LE:
		return (c <= 0);
	case TOK_GT:
		return (c > 0);
	default:
		return (c >= 0);
	}
}

// expr_length: UTF-8 code points of a string, size of an array or object,
// otherwise 0.
static json_int_t
expr_length(const json_t *j)
{
	if (json_is_string(j)) {
		const char *s = json_string_value(j);
		size_t      n = json_string_length(j);
		json_int_t  k = 0;
		for (size_t i = 0; i < n; i++) {
			k += ((unsigned char) s[i] & 0xC0) != 0x80;
		}
		return (k);
	}
	if (json_is_array(j)) {
		return ((json_int_t) json_array_size(j));
	}
	return ((json_int_t) json_object_size(j)); // 0 for non-objects
}

// expr_contains: substring, array element, or object key.
static bool
expr_contains(const json_t *h, const json_t *n)
{
	if (json_is_string(h) && json_is_string(n)) {
		const char *hs = json_string_value(h);
		const char *ns = json_string_value(n);
		size_t      hl = json_string_length(h);
		size_t      nl = json_string_length(n);
		for (size_t i = 0; nl <= hl && i <= hl - nl; i++) {
			if (memcmp(hs + i, ns, nl) == 0) {
				return (true);
			}
		}
		return (false);
	}
	if (json_is_array(h)) {
		for (size_t i = 0; i < json_array_size(h); i++) {
			if (expr_equal(json_array_get(h, i), n)) {
				return (true);
			}
		}
		return (false);
	}
	return (json_is_object(h) && json_is_string(n) &&
	    json_object_getn(h, json_string_value(n), json_string_length(n)) !=
	        NULL);
}

// expr_walk follows segs[0..n) from cur; a borrowed result, or NULL. At a
// "[*]" segment it stops and says where (*star), for expr_project.
static json_t *
expr_walk(char *const *segs, size_t n, json_t *cur, size_t *star)
{
	*star = n;
	for (size_t i = 0; i < n && cur != NULL; i++) {
		const char *seg = segs[i];
		if (strcmp(seg, "[*]") == 0) {
			*star = i;
			return (cur);
		}
		if (json_is_object(cur)) {
			cur = json_object_get(cur, seg);
		} else if (json_is_array(cur) &&
		    isdigit((unsigned char) seg[0])) {
			char         *end;
			unsigned long k = strtoul(seg, &end, 10);
			cur = *end == '\0' ? json_array_get(cur, k) : NULL;
		} else {
			cur = NULL;
		}
	}
	return (cur);
}

// expr_project evaluates segs[0..n) from cur where a segment may be
// "[*]": over an array, the rest of the path from each element, as a new
// array in element order (a missing value is null there); over anything
// else, nothing. The value is owned when a projection made it.
static struct expr_val
expr_project(char *const *segs, size_t n, json_t *cur)
{
	struct expr_val v = { NULL, false };
	size_t          star;
	json_t         *at = expr_walk(segs, n, cur, &star);
	json_t         *el;
	size_t          k;

	if (star == n || at == NULL) {
		v.j = star == n ? at : NULL;
		return (v);
	}
	if (!json_is_array(at)) {
		return (v);
	}
	v.j     = json_array();
	v.owned = true;
	json_array_foreach (at, k, el) {
		struct expr_val e =
		    expr_project(segs + star + 1, n - star - 1, el);
		json_array_append(v.j, e.j != NULL ? e.j : json_null());
		expr_val_drop(e);
	}
	return (v);
}

// expr_eval_bin evaluates both operands of a comparison or a call.
static struct expr_val
expr_eval_bin(const weft_expr *e, const struct expr_node *nd, json_t *doc)
{
	struct expr_val a = expr_eval_node(e, nd->a, doc);
	struct expr_val b = expr_eval_node(e, nd->b, doc);
	bool            r;

	if (nd->kind == EXPR_CMP) {
		r = expr_compare(nd->op, a.j, b.j);
	} else {
		r = expr_contains(a.j, b.j);
	}
	expr_val_drop(a);
	expr_val_drop(b);
	return (expr_val_bool(r));
}

// expr_eval_length evaluates length(a) to a new integer (owned).
static struct expr_val
expr_eval_length(const weft_expr *e, const struct expr_node *nd, json_t *doc)
{
	struct expr_val a = expr_eval_node(e, nd->a, doc);
	struct expr_val v = { json_integer(expr_length(a.j)), true };

	expr_val_drop(a);
	return (v);
}

// expr_truth evaluates node i to a boolean.
static bool
expr_truth(const weft_expr *e, int i, json_t *doc)
{
	struct expr_val v = expr_eval_node(e, i, doc);
	bool            b = expr_truthy(v.j);

	expr_val_drop(v);
	return (b);
}

static struct expr_val
expr_eval_node(const weft_expr *e, int i, json_t *doc)
{
	const struct expr_node *nd = &e->nodes[i];
	struct expr_val         v  = { NULL, false };

	switch (nd->kind) {
	case EXPR_LIT:
		v.j = nd->lit;
		return (v);
	case EXPR_PATH:
		return (expr_project(nd->segs, nd->nsegs, doc));
	case EXPR_NOT:
		return (expr_val_bool(!expr_truth(e, nd->a, doc)));
	case EXPR_AND:
		return (expr_val_bool(
		    expr_truth(e, nd->a, doc) && expr_truth(e, nd->b, doc)));
	case EXPR_OR:
		return (expr_val_bool(
		    expr_truth(e, nd->a, doc) || expr_truth(e, nd->b, doc)));
	case EXPR_LENGTH:
		return (expr_eval_length(e, nd, doc));
	default:
		return (expr_eval_bin(e, nd, doc));
	}
}

bool
weft_expr_eval(const weft_expr *e, json_t *doc)
{
	return (expr_truth(e, e->root, doc));
}

weft_err
weft_expr_paths(const weft_expr *e, weft_expr_path_fn fn, void *arg)
{
	for (size_t i = 0; i < e->n; i++) {
		const struct expr_node *nd = &e->nodes[i];
		weft_err                rv;
		if (nd->kind != EXPR_PATH) {
			continue;
		}
		rv =
		    fn(arg, (const char *const *) nd->segs, nd->nsegs, nd->col);
		if (rv != WEFT_OK) {
			return (rv);
		}
	}
	return (WEFT_OK);
}
