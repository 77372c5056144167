// expr_test: the `when` condition language: evaluation and syntax errors,
// driven by tables.
#include <criterion/criterion.h>

#include <stdlib.h>
#include <string.h>

#include "expr.h"

#define T_TIMEOUT (30 * WEFT_TEST_MULT)

// The document most rows evaluate against (' stands for ").
static const char *const base_doc =
    "{'input':{'x':5,'name':'weft','tags':['a','b'],'tags2':['a','b'],"
    "'empty':'','obj':{'k':1},'zero':0,'real':2.5,'rzero':0.0,'t':true,"
    "'f':false,'n':null,'arr':[],'eobj':{},'nums':[1,2.0],"
    "'q':'a\\'b','bs':'a\\\\b','big':9007199254740993},"
    "'params':{'limit':10,'mode':'fast','want':{'scores':[3,null,9,null],"
    "'tags':[['a'],null,['b','c'],null],'tag0':['a',null,'b',null]}},"
    "'steps':{'fetch':{'status':'succeeded','output':{'n':3,"
    "'files':['x.csv','y.csv']}},'bad':{'status':'failed','output':null,"
    "'error':'boom'},"
    "'m':{'status':'succeeded','output':[{'score':3,'tags':['a']},null,"
    "{'score':9,'tags':['b','c']},{'other':1}]}},"
    "'item':{'size':7,'name':'big.csv'},'index':2}";

struct eval_row {
	const char *expr;
	bool        want;
};

static const struct eval_row eval_rows[] = {
	// Literals and truthiness.
	{ "true", true },
	{ "false", false },
	{ "null", false },
	{ "1", true },
	{ "0", false },
	{ "-1", true },
	{ "0.0", false },
	{ "0.5", true },
	{ "1e3 == 1000", true },
	{ "2.5E-1 == 0.25", true },
	{ "\"\"", false },
	{ "\"a\"", true },
	{ "input.arr", false },
	{ "input.eobj", false },
	{ "input.tags", true },
	{ "input.obj", true },
	{ "input.empty", false },
	{ "input.zero", false },
	{ "input.rzero", false },
	{ "input.real", true },
	{ "input.n", false },
	{ "input.missing", false },
	{ "input", true },
	{ "params.limit", true },

	// [*] maps the rest of the path over an array, null where missing.
	{ "steps.m.output[*].score == params.want.scores", true },
	{ "length(steps.m.output[*].score) == 4", true },
	{ "contains(steps.m.output[*].score, 9)", true },
	{ "contains(steps.m.output[*].score, 4)", false },
	{ "steps.m.output[*].tags[*] == params.want.tags", true },
	{ "steps.m.output[*].tags.0 == params.want.tag0", true },
	{ "steps.m.output[*] == steps.m.output", true },
	{ "length(steps.fetch.output.files[*]) == 2", true },
	{ "steps.fetch.output[*].n", false }, // not an array: nothing
	{ "steps.fetch.output.n[*]", false },
	{ "steps.nope.output[*].score", false },
	{ "input.tags[*] == input.tags", true },

	// A map item's own element and position.
	{ "item.size > 5 && index == 2", true },
	{ "contains(item.name, \".csv\")", true },
	{ "index < 2", false },

	// Numbers compare numerically, integers exactly.
	{ "input.x == 5", true },
	{ "input.x == 5.0", true },
	{ "1 == 1.0", true },
	{ "input.x != 5", false },
	{ "input.x != 6", true },
	{ "input.x > 4", true },
	{ "input.x >= 5", true },
	{ "input.x < 5", false },
	{ "input.x <= 5", true },
	{ "input.real > 2", true },
	{ "input.real < 2.6", true },
	{ "-1 < 0", true },
	{ "input.x > -1", true },
	{ "input.x>-1", true },
	{ "input.big > 9007199254740992", true },
	{ "input.big == 9007199254740992", false },

	// Strings compare bytewise; other orderings are false.
	{ "input.name == \"weft\"", true },
	{ "input.name != \"weft\"", false },
	{ "input.name < \"weft2\"", true },
	{ "input.name < \"wef\"", false },
	{ "\"b\" > \"a\"", true },
	{ "\"B\" < \"a\"", true },
	{ "\"abc\" <= \"abc\"", true },
	{ "input.q == \"a\\\"b\"", true },
	{ "input.bs == \"a\\\\b\"", true },
	{ "input.name > 1", false },
	{ "input.name < 1", false },
	{ "input.tags < input.tags2", false },
	{ "input.missing < 1", false },
	{ "input.missing >= 0", false },
	{ "\"1\" == 1", false },
	{ "1 == true", false },
	{ "null == false", false },

	// Structural equality; missing equals null.
	{ "input.tags == input.tags2", true },
	{ "input.tags != input.tags2", false },
	{ "input.obj == input.obj", true },
	{ "input.obj == input.tags", false },
	{ "input.missing == null", true },
	{ "input.n == null", true },
	{ "input.missing != null", false },
	{ "steps.bad.output == null", true },

	// Paths and array indices.
	{ "steps.fetch.output.files.0 == \"x.csv\"", true },
	{ "steps.fetch.output.files.1 == \"y.csv\"", true },
	{ "steps.fetch.output.files.2", false },
	{ "steps.fetch.output.files.x", false },
	{ "steps.fetch.output.n.0", false },
	{ "steps.fetch.output.n > 0", true },
	{ "steps.bad.error", true },
	{ "steps.fetch.error", false },
	{ "steps.nope.status == \"succeeded\"", false },
	{ "params.limit == 10 && params.mode == \"fast\"", true },

	// Logic, precedence and parentheses.
	{ "input.t && input.f", false },
	{ "input.t && input.t", true },
	{ "input.t || input.f", true },
	{ "input.f || input.f", false },
	{ "!input.f", true },
	{ "!input.t", false },
	{ "!!input.t", true },
	{ "! input.missing", true },
	{ "!(input.t && input.f)", true },
	{ "input.f && input.f || input.t", true },
	{ "input.t || input.f && input.f", true },
	{ "input.f && (input.f || input.t)", false },
	{ "(input.t || input.f) && !input.f", true },
	{ "!input.x == false", true },
	{ "input.t && input.t && input.t && input.f", false },
	{ "input.f || input.f || input.f || input.x", true },
	{ "steps.fetch.status == \"succeeded\" && steps.bad.status == "
	  "\"failed\"",
	    true },
	{ "  input.x\t==\n5 ", true },

	// length().
	{ "length(input.name) == 4", true },
	{ "length(\"h\xc3\xa9llo\") == 5", true },
	{ "length(input.tags) == 2", true },
	{ "length(input.obj) == 1", true },
	{ "length(steps.fetch.output) > 0", true },
	{ "length(input.x) == 0", true },
	{ "length(input.missing) == 0", true },
	{ "length(input.arr)", false },
	{ "length(length(input.tags)) == 0", true },

	// contains().
	{ "contains(input.name, \"ef\")", true },
	{ "contains(input.name, \"x\")", false },
	{ "contains(input.name, \"\")", true },
	{ "contains(\"\", \"\")", true },
	{ "contains(\"ab\", \"abc\")", false },
	{ "contains(input.tags, \"b\")", true },
	{ "contains(input.tags, \"c\")", false },
	{ "contains(input.nums, 2)", true },
	{ "contains(input.nums, 1.0)", true },
	{ "contains(input.nums, 3)", false },
	{ "contains(input.obj, \"k\")", true },
	{ "contains(input.obj, \"z\")", false },
	{ "contains(input.obj, 1)", false },
	{ "contains(input.x, 5)", false },
	{ "contains(input.name, 1)", false },
	{ "contains(input.missing, \"a\")", false },
	{ "contains(steps, \"fetch\") && !contains(steps, \"load\")", true },
};

// dq returns a copy of s with every ' turned into "; free().
static char *
dq(const char *s)
{
	char *d = strdup(s);

	for (char *p = d; *p != '\0'; p++) {
		if (*p == '\'') {
			*p = '"';
		}
	}
	return (d);
}

static json_t *
load_doc(void)
{
	char        *text = dq(base_doc);
	json_error_t jerr;
	json_t      *doc = json_loads(text, 0, &jerr);

	cr_assert_not_null(doc, "base doc: %s", jerr.text);
	free(text);
	return (doc);
}

Test(expr, eval_table, .timeout = T_TIMEOUT)
{
	json_t *doc    = load_doc();
	char   *before = json_dumps(doc, JSON_SORT_KEYS);

	for (size_t i = 0; i < sizeof(eval_rows) / sizeof(eval_rows[0]); i++) {
		const struct eval_row *r        = &eval_rows[i];
		weft_expr             *e        = NULL;
		char                   err[128] = "";

		cr_expect_eq(weft_expr_compile(&e, r->expr, err, sizeof(err)),
		    WEFT_OK, "[%s]: %s", r->expr, err);
		if (e == NULL) {
			continue;
		}
		cr_expect_eq(weft_expr_eval(e, doc), r->want, "[%s]: want %s",
		    r->expr, r->want ? "true" : "false");
		weft_expr_free(e);
	}
	// Evaluation is pure: the document is unchanged.
	char *after = json_dumps(doc, JSON_SORT_KEYS);
	cr_expect_str_eq(before, after);
	free(before);
	free(after);
	json_decref(doc);
}

Test(expr, eval_without_document, .timeout = T_TIMEOUT)
{
	weft_expr *e = NULL;
	char       err[128];

	cr_assert_eq(weft_expr_compile(
	                 &e, "input.x == null && !steps.a", err, sizeof(err)),
	    WEFT_OK);
	cr_expect(weft_expr_eval(e, NULL));
	weft_expr_free(e);
	weft_expr_free(NULL);
}

struct syntax_row {
	const char *expr;
	const char *want; // the whole message
};

static const struct syntax_row syntax_rows[] = {
	{ "", "col 1: unexpected end of expression" },
	{ "   ", "col 4: unexpected end of expression" },
	{ "(input.x", "col 9: expected ')'" },
	{ "(input.x == 1", "col 14: expected ')'" },
	{ "input.x ==", "col 11: unexpected end of expression" },
	{ "input.x = 1", "col 9: unexpected '='; did you mean '=='?" },
	{ "input.x & input.y", "col 9: unexpected '&'; did you mean '&&'?" },
	{ "input.x | input.y", "col 9: unexpected '|'; did you mean '||'?" },
	{ "1 == 1 == 1",
	    "col 8: comparisons do not chain; combine them with &&" },
	{ "1 < 2 > 0",
	    "col 7: comparisons do not chain; combine them with &&" },
	{ "\"abc", "col 1: unterminated string" },
	{ "input.x == \"abc", "col 12: unterminated string" },
	{ "\"a\\nb\"", "col 3: unknown escape (only \\\" and \\\\)" },
	{ "\"\xff\"", "col 1: string is not valid UTF-8" },
	{ "input.", "col 7: expected a name after '.'" },
	{ "input..x", "col 7: expected a name after '.'" },
	{ "input.x.", "col 9: expected a name after '.'" },
	{ "foo(1)", "col 1: unknown function \"foo\"" },
	{ "steps.length(1)", "col 1: unknown function \"steps.length\"" },
	{ "length(1, 2)", "col 1: length() takes 1 argument, got 2" },
	{ "length()", "col 1: length() takes 1 argument, got 0" },
	{ "contains(1)", "col 1: contains() takes 2 arguments, got 1" },
	{ "contains(1, 2, 3)", "col 1: contains() takes 2 arguments, got 3" },
	{ "contains(input.x,)", "col 18: expected a value, got ')'" },
	{ "contains(input.x 1)", "col 18: expected ',' or ')'" },
	{ "length(input.x", "col 15: expected ',' or ')'" },
	{ "stepz.a",
	    "col 1: unknown name \"stepz.a\" (paths start with input, "
	    "params, steps, or in a map step item or index)" },
	{ "x == 1",
	    "col 1: unknown name \"x\" (paths start with input, params, "
	    "steps, or in a map step item or index)" },
	{ "input.x == TRUE",
	    "col 12: unknown name \"TRUE\" (paths start with "
	    "input, params, steps, or in a map step item or index)" },
	{ "items.a",
	    "col 1: unknown name \"items.a\" (paths start with input, "
	    "params, steps, or in a map step item or index)" },
	{ "steps.m.output[0]",
	    "col 15: expected \"[*]\" (index an array with .N)" },
	{ "steps.m.output[*",
	    "col 15: expected \"[*]\" (index an array with .N)" },
	{ "steps.m.output[]", "col 15: expected \"[*]\" (index an array with .N)" },
	{ "steps.m.output[*].", "col 19: expected a name after '.'" },
	{ "steps.m.output.[*]", "col 16: expected a name after '.'" },
	{ "steps.m.output[*]x", "col 18: unexpected 'x' after the expression" },
	{ "[*]", "col 1: unexpected character '['" },
	{ "input.x )", "col 9: unexpected ')' after the expression" },
	{ "true false", "col 6: unexpected 'false' after the expression" },
	{ "input.x ! 1", "col 9: unexpected '!' after the expression" },
	{ "( )", "col 3: expected a value, got ')'" },
	{ "&& true", "col 1: expected a value, got '&&'" },
	{ "1abc", "col 1: malformed number" },
	{ "1.2.3", "col 1: malformed number" },
	{ "99999999999999999999", "col 1: number out of range" },
	{ "1e999", "col 1: number out of range" },
	{ "input.x @ 1", "col 9: unexpected character '@'" },
	{ "input.x == 'a'", "col 12: unexpected character '''" },
	{ "input.x \x01", "col 9: unexpected byte 0x01" },
};

Test(expr, syntax_errors, .timeout = T_TIMEOUT)
{
	for (size_t i = 0; i < sizeof(syntax_rows) / sizeof(syntax_rows[0]);
	     i++) {
		const struct syntax_row *r        = &syntax_rows[i];
		weft_expr               *e        = NULL;
		char                     err[160] = "";

		cr_expect_eq(weft_expr_compile(&e, r->expr, err, sizeof(err)),
		    WEFT_EINVAL, "[%s]: want EINVAL", r->expr);
		cr_expect_null(e, "[%s]", r->expr);
		cr_expect_str_eq(err, r->want, "[%s]", r->expr);
		weft_expr_free(e);
	}
}

// nest returns open x '(' or '!', then "true", then the closers; free().
static char *
nest(size_t n, char open)
{
	char  *s = malloc(2 * n + 5);
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		s[o++] = open;
	}
	memcpy(s + o, "true", 4);
	o += 4;
	for (size_t i = 0; open == '(' && i < n; i++) {
		s[o++] = ')';
	}
	s[o] = '\0';
	return (s);
}

Test(expr, depth_limit, .timeout = T_TIMEOUT)
{
	const char opens[] = { '(', '!' };

	for (size_t k = 0; k < 2; k++) {
		char      *ok  = nest(WEFT_EXPR_MAX_DEPTH - 1, opens[k]);
		char      *bad = nest(WEFT_EXPR_MAX_DEPTH, opens[k]);
		weft_expr *e   = NULL;
		char       err[128];

		cr_expect_eq(weft_expr_compile(&e, ok, err, sizeof(err)),
		    WEFT_OK, "%c: %s", opens[k], err);
		cr_expect_eq(weft_expr_eval(e, NULL), opens[k] == '(');
		weft_expr_free(e);
		cr_expect_eq(
		    weft_expr_compile(&e, bad, err, sizeof(err)), WEFT_EINVAL);
		cr_expect_str_eq(
		    err, "col 65: expression nested deeper than 64");
		free(ok);
		free(bad);
	}
}

Test(expr, length_limit, .timeout = T_TIMEOUT)
{
	char      *src = malloc(WEFT_EXPR_MAX_BYTES + 2);
	weft_expr *e   = NULL;
	char       err[128];

	memset(src, ' ', WEFT_EXPR_MAX_BYTES + 1);
	memcpy(src, "true", 4);
	src[WEFT_EXPR_MAX_BYTES] = '\0';
	cr_expect_eq(weft_expr_compile(&e, src, err, sizeof(err)), WEFT_OK);
	weft_expr_free(e);
	src[WEFT_EXPR_MAX_BYTES]     = ' ';
	src[WEFT_EXPR_MAX_BYTES + 1] = '\0';
	cr_expect_eq(
	    weft_expr_compile(&e, src, err, sizeof(err)), WEFT_ETOOBIG);
	cr_expect_null(e);
	cr_expect_str_eq(err, "expression is 4097 bytes, limit is 4096");
	free(src);
}

// A long && chain within the length limit nests only left-deep, not
// toward the depth limit.
Test(expr, long_chain, .timeout = T_TIMEOUT)
{
	char      *src = malloc(WEFT_EXPR_MAX_BYTES + 1);
	size_t     o   = 0;
	weft_expr *e   = NULL;
	char       err[128];

	memcpy(src, "true", 4);
	o = 4;
	while (o + 8 <= WEFT_EXPR_MAX_BYTES) {
		memcpy(src + o, " && true", 8);
		o += 8;
	}
	src[o] = '\0';
	cr_assert_eq(
	    weft_expr_compile(&e, src, err, sizeof(err)), WEFT_OK, "%s", err);
	cr_expect(weft_expr_eval(e, NULL));
	weft_expr_free(e);
	free(src);
}

struct path_seen {
	char text[256];
};

static weft_err
collect(void *arg, const char *const *segs, size_t n, int col)
{
	struct path_seen *s = arg;
	size_t            o = strlen(s->text);

	o += (size_t) snprintf(s->text + o, sizeof(s->text) - o, "%d:", col);
	for (size_t i = 0; i < n; i++) {
		o += (size_t) snprintf(s->text + o, sizeof(s->text) - o, "%s%s",
		    i ? "." : "", segs[i]);
	}
	snprintf(s->text + o, sizeof(s->text) - o, " ");
	return (strstr(s->text, "stop") ? WEFT_EINVAL : WEFT_OK);
}

Test(expr, paths_in_source_order, .timeout = T_TIMEOUT)
{
	struct path_seen seen = { "" };
	weft_expr       *e    = NULL;
	char             err[128];

	cr_assert_eq(weft_expr_compile(&e,
	                 "steps.a.output.0 > 1 || contains(params.x, input)",
	                 err, sizeof(err)),
	    WEFT_OK, "%s", err);
	cr_expect_eq(weft_expr_paths(e, collect, &seen), WEFT_OK);
	cr_expect_str_eq(seen.text, "1:steps.a.output.0 34:params.x 44:input ");
	weft_expr_free(e);

	memset(&seen, 0, sizeof(seen));
	cr_assert_eq(
	    weft_expr_compile(&e, "input.stop || input.b", err, sizeof(err)),
	    WEFT_OK);
	cr_expect_eq(weft_expr_paths(e, collect, &seen), WEFT_EINVAL);
	cr_expect_str_eq(seen.text, "1:input.stop ");
	weft_expr_free(e);
}
