// depends_test: per-dependency conditions (coordinator/model/depends.c):
// what a condition names and how it evaluates, from a table over step
// states, and every malformed input refused with its column.
#include <criterion/criterion.h>
#include <string.h>

#include "depends.h"

// States by letter for steps a, b, c: S succeeded, F failed, A
// upstream_failed, K skipped, C cancelled, P not ended.
static enum weft_step_state
state_of_letter(char ch)
{
	switch (ch) {
	case 'S':
		return (WEFT_STEP_SUCCEEDED);
	case 'F':
		return (WEFT_STEP_FAILED);
	case 'A':
		return (WEFT_STEP_UPSTREAM_FAILED);
	case 'K':
		return (WEFT_STEP_SKIPPED);
	case 'C':
		return (WEFT_STEP_CANCELLED);
	default:
		return (WEFT_STEP_RUNNING);
	}
}

// The states of a, b, c as a string ("SF" = a succeeded, b failed).
static enum weft_step_state
state_fn(void *arg, const char *name)
{
	const char *states = arg;
	size_t      k      = (size_t) (name[0] - 'a');

	cr_assert(strlen(name) == 1 && k < strlen(states), "asked for %s", name);
	return (state_of_letter(states[k]));
}

static const struct eval_row {
	const char *src;
	const char *names; // the dependency set, comma separated
	const char *states;
	bool        want;
} eval_rows[] = {
	{ "a.succeeded && (b.failed || b.skipped)", "a,b", "SF", true },
	{ "a.succeeded && (b.failed || b.skipped)", "a,b", "SK", true },
	{ "a.succeeded && (b.failed || b.skipped)", "a,b", "SS", false },
	{ "a.succeeded && (b.failed || b.skipped)", "a,b", "FF", false },
	{ "a.succeeded && (b.failed || b.skipped)", "a,b", "SA", false },
	{ "a", "a", "S", true },  // bare: succeeded or skipped (Argo)
	{ "a", "a", "K", true },
	{ "a", "a", "F", false },
	{ "a", "a", "A", false },
	{ "!a.failed", "a", "S", true },
	{ "!a.failed", "a", "F", false },
	{ "!!a.failed", "a", "F", true },
	{ "a.upstream_failed", "a", "A", true },
	{ "a.upstream_failed", "a", "F", false },
	{ "a.cancelled", "a", "C", true },
	{ "a.done", "a", "S", true },
	{ "a.done", "a", "A", true },
	{ "a.done", "a", "P", false }, // not ended: matches no state
	{ "a.succeeded", "a", "P", false },
	{ "a.failed || b.failed && c.failed", "a,b,c", "SFS", false },
	{ "a.failed || b.failed && c.failed", "a,b,c", "FSS", true },
	{ "(a.failed || b.failed) && c.failed", "a,b,c", "FSS", false },
	{ "a.failed||b.failed", "a,b", "SF", true },
	{ "  a.succeeded\n&&\tb.succeeded  ", "a,b", "SS", true },
	{ "a.succeeded || a.failed", "a", "F", true }, // named once
	{ "c.done && a.done && b.done && c.done", "c,a,b", "SSS", true },
};

static void
check_names(const struct eval_row *row, const weft_depends *d)
{
	json_t *names = weft_depends_names(d);
	char    got[64] = "";
	size_t  k;
	json_t *n;

	json_array_foreach (names, k, n) {
		strcat(got, k ? "," : "");
		strcat(got, json_string_value(n));
	}
	cr_expect_str_eq(got, row->names, "%s: names %s, want %s", row->src,
	    got, row->names);
	json_decref(names);
}

Test(depends, evaluates_from_the_table)
{
	for (size_t i = 0; i < sizeof(eval_rows) / sizeof(eval_rows[0]); i++) {
		const struct eval_row *row = &eval_rows[i];
		weft_depends          *d;
		char                   err[200];
		cr_assert_eq(weft_depends_compile(&d, row->src, err, sizeof(err)),
		    WEFT_OK, "%s: %s", row->src, err);
		check_names(row, d);
		cr_expect_eq(weft_depends_eval(d, state_fn, (void *) row->states),
		    row->want, "%s with a,b,c = %s: want %d", row->src,
		    row->states, row->want);
		weft_depends_free(d);
	}
}

static const struct bad_row {
	const char *src;
	const char *want;
} bad_rows[] = {
	{ "", "col 1: expected a step name, got the end" },
	{ "   ", "col 4: expected a step name, got the end" },
	{ "a.succeded", "col 3: unknown state \"succeded\" (want succeeded, "
	                "failed, upstream_failed, skipped, cancelled or done)" },
	{ "a.", "col 3: unknown state \"\" (want succeeded, failed, "
	        "upstream_failed, skipped, cancelled or done)" },
	{ "a.Succeeded", "col 3: unknown state \"Succeeded\" (want succeeded, "
	                 "failed, upstream_failed, skipped, cancelled or done)" },
	{ "a.succeeded &&", "col 15: expected a step name, got the end" },
	{ "a.succeeded & b.failed",
	    "col 13: unexpected \"& b.\" (want && or || between terms)" },
	{ "a.succeeded b.failed",
	    "col 13: unexpected \"b.fa\" (want && or || between terms)" },
	{ "(a.succeeded", "col 1: unclosed \"(\"" },
	{ "a.succeeded)", "col 12: unexpected \")\" (want && or || between terms)" },
	{ "|| a", "col 1: expected a step name, got \"|\"" },
	{ "a.failed.x", "col 9: unexpected \".x\" (want && or || between terms)" },
	{ "a == b", "col 3: unexpected \"== b\" (want && or || between terms)" },
	{ "steps.a.succeeded", "col 7: unknown state \"a\" (want succeeded, "
	                       "failed, upstream_failed, skipped, cancelled or "
	                       "done)" },
	{ "\"a\"", "col 1: expected a step name, got \"\"\"" },
};

Test(depends, malformed_input_is_refused_with_its_column)
{
	for (size_t i = 0; i < sizeof(bad_rows) / sizeof(bad_rows[0]); i++) {
		weft_depends *d = (weft_depends *) 1;
		char          err[200] = "";
		cr_expect_eq(weft_depends_compile(&d, bad_rows[i].src, err,
		                 sizeof(err)),
		    WEFT_EINVAL, "\"%s\" compiled", bad_rows[i].src);
		cr_expect_null(d, "\"%s\": *out not NULL", bad_rows[i].src);
		cr_expect_str_eq(err, bad_rows[i].want, "\"%s\": got %s",
		    bad_rows[i].src, err);
	}
}

Test(depends, limits)
{
	char          err[200];
	weft_depends *d;
	static char   deep[WEFT_DEPENDS_MAX_BYTES + 2];
	size_t        n = 0;

	// 65 levels of parentheses: over the depth limit.
	for (int k = 0; k < 65; k++) {
		deep[n++] = '(';
	}
	deep[n++] = 'a';
	for (int k = 0; k < 65; k++) {
		deep[n++] = ')';
	}
	deep[n] = '\0';
	cr_expect_eq(weft_depends_compile(&d, deep, err, sizeof(err)),
	    WEFT_EINVAL);
	cr_expect(strstr(err, "nested too deep") != NULL, "%s", err);
	// 64 levels are fine.
	cr_expect_eq(weft_depends_compile(&d, deep + 1, err, sizeof(err)),
	    WEFT_EINVAL, "unbalanced: one ) too many");
	memmove(deep, deep + 1, n);
	deep[n - 2] = '\0';
	cr_assert_eq(weft_depends_compile(&d, deep, err, sizeof(err)), WEFT_OK,
	    "%s", err);
	weft_depends_free(d);
	// Text over 4096 bytes.
	memset(deep, 'a', WEFT_DEPENDS_MAX_BYTES + 1);
	deep[WEFT_DEPENDS_MAX_BYTES + 1] = '\0';
	cr_expect_eq(weft_depends_compile(&d, deep, err, sizeof(err)),
	    WEFT_ETOOBIG);
	cr_expect_str_eq(err, "longer than 4096 bytes");
	// A step id over 128 characters.
	memset(deep, 'a', 129);
	deep[129] = '\0';
	cr_expect_eq(weft_depends_compile(&d, deep, err, sizeof(err)),
	    WEFT_EINVAL);
	cr_expect_str_eq(err, "col 1: a step id is 1-128 characters");
	// A long chain of || evaluates (the recursion is bounded by the text).
	n = 0;
	for (int k = 0; k < 400; k++) { // 3,998 bytes
		n += (size_t) snprintf(deep + n, sizeof(deep) - n, "%sa.failed",
		    k ? "||" : "");
	}
	cr_assert_eq(weft_depends_compile(&d, deep, err, sizeof(err)), WEFT_OK,
	    "%s", err);
	cr_expect(weft_depends_eval(d, state_fn, (void *) "F"));
	cr_expect_not(weft_depends_eval(d, state_fn, (void *) "S"));
	weft_depends_free(d);
	weft_depends_free(NULL);
}
