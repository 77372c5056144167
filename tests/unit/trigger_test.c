// trigger_test: the pure trigger-rule evaluator (coordinator/model/trigger.c)
// against Airflow's answers: every rule x every mix of dependency states
// from a table, then, exhaustively up to four dependencies, that a verdict
// is final (no way the pending ones end changes it) and that every fully
// ended mix is decided.
#include <criterion/criterion.h>
#include <string.h>

#include "trigger.h"

#define W WEFT_TRIGGER_WAIT
#define R WEFT_TRIGGER_RUN
#define K WEFT_TRIGGER_SKIP
#define U WEFT_TRIGGER_UPSTREAM_FAILED

// Dependency states by letter: S succeeded, F failed, A upstream_failed,
// K skipped, C cancelled (counts as failed), P not ended (running).
static weft_trigger_counts
counts_of(const char *deps)
{
	weft_trigger_counts c = { 0 };

	for (const char *p = deps; *p != '\0'; p++) {
		switch (*p) {
		case 'S':
			weft_trigger_count(&c, WEFT_STEP_SUCCEEDED);
			break;
		case 'F':
			weft_trigger_count(&c, WEFT_STEP_FAILED);
			break;
		case 'A':
			weft_trigger_count(&c, WEFT_STEP_UPSTREAM_FAILED);
			break;
		case 'K':
			weft_trigger_count(&c, WEFT_STEP_SKIPPED);
			break;
		case 'C':
			weft_trigger_count(&c, WEFT_STEP_CANCELLED);
			break;
		default:
			weft_trigger_count(&c, WEFT_STEP_RUNNING);
			break;
		}
	}
	return (c);
}

// Columns in enum weft_trigger order.
#define NRULES WEFT_TRIGGER_NRULES

static const struct trigger_row {
	const char               *deps;
	enum weft_trigger_verdict want[NRULES];
} rows[] = {
	// clang-format off
	//         all_   all_  one_   none_  all_   one_   one_  none_f. none_  all_
	//         succ.  done  succ.  failed failed failed done  min_one skip.  skip.
	{ "",    { R,     R,    R,     R,     R,     R,     R,    R,      R,     R } },
	{ "S",   { R,     R,    R,     R,     K,     K,     R,    R,      R,     K } },
	{ "F",   { U,     R,    U,     U,     R,     R,     R,    U,      R,     K } },
	{ "A",   { U,     R,    U,     U,     R,     R,     K,    U,      R,     K } },
	{ "K",   { K,     R,    K,     R,     K,     K,     K,    K,      K,     R } },
	{ "C",   { U,     R,    U,     U,     R,     R,     R,    U,      R,     K } },
	{ "P",   { W,     W,    W,     W,     W,     W,     W,    W,      W,     W } },
	{ "SS",  { R,     R,    R,     R,     K,     K,     R,    R,      R,     K } },
	{ "SF",  { U,     R,    R,     U,     K,     R,     R,    U,      R,     K } },
	{ "SA",  { U,     R,    R,     U,     K,     R,     R,    U,      R,     K } },
	{ "SK",  { K,     R,    R,     R,     K,     K,     R,    R,      K,     K } },
	{ "SP",  { W,     W,    R,     W,     K,     W,     R,    W,      W,     K } },
	{ "FF",  { U,     R,    U,     U,     R,     R,     R,    U,      R,     K } },
	{ "FA",  { U,     R,    U,     U,     R,     R,     R,    U,      R,     K } },
	{ "FK",  { U,     R,    U,     U,     K,     R,     R,    U,      K,     K } },
	{ "FP",  { U,     W,    W,     U,     W,     R,     R,    U,      W,     K } },
	{ "AA",  { U,     R,    U,     U,     R,     R,     K,    U,      R,     K } },
	{ "AK",  { U,     R,    U,     U,     K,     R,     K,    U,      K,     K } },
	{ "AP",  { U,     W,    W,     U,     W,     R,     W,    U,      W,     K } },
	{ "KK",  { K,     R,    K,     R,     K,     K,     K,    K,      K,     R } },
	{ "KP",  { W,     W,    W,     W,     K,     W,     W,    W,      K,     W } },
	{ "PP",  { W,     W,    W,     W,     W,     W,     W,    W,      W,     W } },
	{ "SFK", { U,     R,    R,     U,     K,     R,     R,    U,      K,     K } },
	{ "SKK", { K,     R,    R,     R,     K,     K,     R,    R,      K,     K } },
	{ "KKA", { U,     R,    U,     U,     K,     R,     K,    U,      K,     K } },
	{ "KKK", { K,     R,    K,     R,     K,     K,     K,    K,      K,     R } },
	{ "KKP", { W,     W,    W,     W,     K,     W,     W,    W,      K,     W } },
	{ "SPP", { W,     W,    R,     W,     K,     W,     R,    W,      W,     K } },
	{ "APP", { U,     W,    W,     U,     W,     R,     W,    U,      W,     K } },
	{ "SSF", { U,     R,    R,     U,     K,     R,     R,    U,      R,     K } },
	// clang-format on
};

Test(trigger, every_rule_every_mix_from_the_table)
{
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		weft_trigger_counts c = counts_of(rows[i].deps);
		for (int rule = 0; rule < NRULES; rule++) {
			enum weft_trigger_verdict got =
			    weft_trigger_eval((enum weft_trigger) rule, &c);
			cr_expect_eq(got, rows[i].want[rule],
			    "%s with dependencies \"%s\": got %s, want %s",
			    weft_trigger_name((enum weft_trigger) rule),
			    rows[i].deps, weft_trigger_verdict_name(got),
			    weft_trigger_verdict_name(rows[i].want[rule]));
		}
	}
}

// The order of a mix does not matter: the evaluator reads counts.
Test(trigger, order_of_the_dependencies_does_not_matter)
{
	const char *a[] = { "SFK", "KFS", "FSK" };
	for (int rule = 0; rule < NRULES; rule++) {
		weft_trigger_counts c0 = counts_of(a[0]);
		for (size_t k = 1; k < 3; k++) {
			weft_trigger_counts ck = counts_of(a[k]);
			cr_expect_eq(weft_trigger_eval((enum weft_trigger) rule, &c0),
			    weft_trigger_eval((enum weft_trigger) rule, &ck));
		}
	}
}

static const char ENDS[] = "SFAK";

// finality_check: mix (some P) decided as v must stay v however its P end.
static void
finality_check(enum weft_trigger rule, char *mix, size_t n, size_t at,
    enum weft_trigger_verdict v, const char *orig)
{
	if (at == n) {
		weft_trigger_counts c   = counts_of(mix);
		enum weft_trigger_verdict got = weft_trigger_eval(rule, &c);
		cr_expect_eq(got, v,
		    "%s: \"%s\" decided %s early, but ending as \"%s\" says %s",
		    weft_trigger_name(rule), orig, weft_trigger_verdict_name(v),
		    mix, weft_trigger_verdict_name(got));
		return;
	}
	if (mix[at] != 'P') {
		finality_check(rule, mix, n, at + 1, v, orig);
		return;
	}
	for (size_t e = 0; e < 4; e++) {
		mix[at] = ENDS[e];
		finality_check(rule, mix, n, at + 1, v, orig);
	}
	mix[at] = 'P';
}

// every_mix calls check on every sequence of n letters of SFAKP.
static void
every_mix(size_t n, void (*check)(const char *mix))
{
	char   mix[8];
	size_t total = 1;

	for (size_t k = 0; k < n; k++) {
		total *= 5;
	}
	for (size_t x = 0; x < total; x++) {
		size_t y = x;
		for (size_t k = 0; k < n; k++) {
			mix[k] = "SFAKP"[y % 5];
			y /= 5;
		}
		mix[n] = '\0';
		check(mix);
	}
}

static void
check_mix(const char *mix)
{
	weft_trigger_counts c = counts_of(mix);

	for (int rule = 0; rule < NRULES; rule++) {
		enum weft_trigger_verdict v =
		    weft_trigger_eval((enum weft_trigger) rule, &c);
		char buf[8];
		if (c.pending == 0) {
			cr_expect_neq(v, W, "%s: \"%s\" has ended but waits",
			    weft_trigger_name((enum weft_trigger) rule), mix);
			continue;
		}
		if (v != W) {
			snprintf(buf, sizeof(buf), "%s", mix);
			finality_check((enum weft_trigger) rule, buf, strlen(buf),
			    0, v, mix);
		}
	}
}

Test(trigger, verdicts_are_final_and_ended_mixes_decided)
{
	for (size_t n = 0; n <= 4; n++) {
		every_mix(n, check_mix);
	}
}

// weft_trigger_decisive is what the run model asks before it looks at a
// waiting step: it must agree with the evaluator for every rule and end.
Test(trigger, decisive_agrees_with_eval)
{
	for (int rule = 0; rule < NRULES; rule++) {
		for (int st = 0; st < WEFT_STEP_NSTATES; st++) {
			weft_trigger_counts c = { .pending = 2 };
			bool want;
			if (weft_step_terminal((enum weft_step_state) st)) {
				weft_trigger_count(&c, (enum weft_step_state) st);
			}
			want = weft_step_terminal((enum weft_step_state) st) &&
			    weft_trigger_eval((enum weft_trigger) rule, &c) != W;
			cr_expect_eq(weft_trigger_decisive((enum weft_trigger) rule,
			                 (enum weft_step_state) st),
			    want, "%s, a dependency %s",
			    weft_trigger_name((enum weft_trigger) rule),
			    weft_step_state_name((enum weft_step_state) st));
		}
	}
	// The one_* rules fire early; all_done never does.
	cr_expect(weft_trigger_decisive(WEFT_TRIGGER_ONE_SUCCESS, WEFT_STEP_SUCCEEDED));
	cr_expect(weft_trigger_decisive(WEFT_TRIGGER_ONE_FAILED, WEFT_STEP_UPSTREAM_FAILED));
	cr_expect(weft_trigger_decisive(WEFT_TRIGGER_ONE_DONE, WEFT_STEP_FAILED));
	cr_expect_not(weft_trigger_decisive(WEFT_TRIGGER_ALL_DONE, WEFT_STEP_FAILED));
	cr_expect_not(weft_trigger_decisive(WEFT_TRIGGER_ONE_SUCCESS, WEFT_STEP_RUNNING));
}

Test(trigger, names)
{
	cr_expect_str_eq(weft_trigger_name(WEFT_TRIGGER_NONE_FAILED_MIN_ONE_SUCCESS),
	    "none_failed_min_one_success");
	cr_expect_str_eq(weft_trigger_name(WEFT_TRIGGER_NRULES), "?");
	cr_expect_str_eq(weft_trigger_verdict_name(U), "upstream_failed");
}
