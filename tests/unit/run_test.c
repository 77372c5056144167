// run_test: the pure run model: dependency resolution, data passing,
// failures and their propagation, retries, stale results, losses, cancel.
#include <criterion/criterion.h>
#include <string.h>

#include "def.h"
#include "run.h"

static weft_def *
def_of(const char *text)
{
	weft_def *def;
	char      err[512];
	cr_assert_eq(weft_def_parse(&def, text, strlen(text), err, sizeof(err)),
	    WEFT_OK, "definition: %s", err);
	return (def);
}

static long
idx(const weft_def *d, const char *id)
{
	long i = weft_def_find(d, id);
	cr_assert(i >= 0, "no step %s", id);
	return (i);
}

// count_events counts events of a type in the output.
static int
count_events(const weft_out *o, const char *type)
{
	int n = 0;
	for (size_t k = 0; k < o->nevents; k++) {
		n += strcmp(o->events[k].type, type) == 0;
	}
	return (n);
}

static bool
has_effect(const weft_out *o, enum weft_effect_kind kind, long step)
{
	for (size_t k = 0; k < o->neffects; k++) {
		if (o->effects[k].kind == kind && o->effects[k].step == step) {
			return (true);
		}
	}
	return (false);
}

// finish dispatches, accepts and completes step i with output.
static void
finish(weft_run *r, long i, json_t *output, weft_out *o)
{
	cr_assert_eq(weft_run_dispatched(r, i, "w1", 1000, o), WEFT_OK);
	cr_assert_eq(weft_run_accepted(r, i, r->steps[i].attempt, o), WEFT_OK);
	weft_result res = { .attempt = r->steps[i].attempt, .ok = true,
		.output = output, .node = "w1" };
	cr_assert_eq(weft_run_result(r, i, &res, 1001, o), WEFT_OK);
}

static void
fail(weft_run *r, long i, const char *error, weft_out *o)
{
	cr_assert_eq(weft_run_dispatched(r, i, "w1", 1000, o), WEFT_OK);
	weft_result res = { .attempt = r->steps[i].attempt, .ok = false,
		.error = error, .node = "w1" };
	cr_assert_eq(weft_run_result(r, i, &res, 1001, o), WEFT_OK);
}

static const char *diamond =
    "{\"name\":\"d\",\"params\":{\"n\":{\"type\":\"int\",\"default\":2}},"
    "\"steps\":[{\"id\":\"a\",\"type\":\"echo\",\"with\":{\"x\":\"${params.n}\"}},"
    "{\"id\":\"b\",\"type\":\"echo\",\"depends_on\":[\"a\"]},"
    "{\"id\":\"c\",\"type\":\"echo\",\"depends_on\":[\"a\"]},"
    "{\"id\":\"d\",\"type\":\"echo\",\"depends_on\":[\"b\",\"c\"],"
    "\"with\":{\"fromb\":\"${steps.b.output.v}\"}}]}";

Test(run, diamond_passes_data_and_succeeds)
{
	weft_def *def = def_of(diamond);
	weft_out  o;
	json_t   *params;
	char      err[256];

	weft_out_init(&o);
	cr_assert_eq(weft_def_bind_params(def, NULL, &params, err, sizeof(err)),
	    WEFT_OK);
	weft_run *r = weft_run_alloc("R1", def, json_pack("{s:i}", "k", 7),
	    params, 0, &o);
	cr_assert_eq(weft_run_start(r, 0, &o), WEFT_OK);
	cr_expect(has_effect(&o, WEFT_EFFECT_ENQUEUE, idx(def, "a")));
	cr_expect_not(has_effect(&o, WEFT_EFFECT_ENQUEUE, idx(def, "b")));

	// a's rendered input carries the param with its type.
	json_t *in = weft_run_step_input(r, idx(def, "a"), err, sizeof(err));
	cr_assert_not_null(in, "%s", err);
	cr_expect_eq(json_integer_value(json_object_get(
	                 json_object_get(in, "with"), "x")),
	    2);
	cr_expect_eq(json_integer_value(json_object_get(
	                 json_object_get(in, "input"), "k")),
	    7);
	json_decref(in);

	finish(r, idx(def, "a"), json_pack("{s:i}", "v", 1), &o);
	cr_expect(has_effect(&o, WEFT_EFFECT_ENQUEUE, idx(def, "b")));
	cr_expect(has_effect(&o, WEFT_EFFECT_ENQUEUE, idx(def, "c")));
	finish(r, idx(def, "b"), json_pack("{s:s}", "v", "from-b"), &o);
	cr_expect_not(has_effect(&o, WEFT_EFFECT_ENQUEUE, idx(def, "d")),
	    "d must wait for c");
	finish(r, idx(def, "c"), json_null(), &o);
	cr_expect(has_effect(&o, WEFT_EFFECT_ENQUEUE, idx(def, "d")));

	in = weft_run_step_input(r, idx(def, "d"), err, sizeof(err));
	cr_assert_not_null(in);
	cr_expect_str_eq(json_string_value(json_object_get(
	                     json_object_get(in, "with"), "fromb")),
	    "from-b");
	cr_expect_str_eq(json_string_value(json_object_get(
	                     json_object_get(json_object_get(in, "steps"), "b"),
	                     "status")),
	    "succeeded");
	json_decref(in);
	finish(r, idx(def, "d"), json_pack("{s:b}", "done", 1), &o);
	cr_expect_eq(r->state, WEFT_RUN_SUCCEEDED);
	cr_expect_eq(count_events(&o, "run_succeeded"), 1);
	cr_expect_eq(count_events(&o, "step_succeeded"), 4);
	json_t *out = weft_run_output(r);
	cr_expect(json_is_true(json_object_get(json_object_get(out, "d"), "done")));
	json_decref(out);
	weft_out_fini(&o);
	weft_run_free(r);
	weft_def_free(def);
}

Test(run, failure_skips_dependents_and_fails_run)
{
	weft_def *def = def_of(diamond);
	weft_out  o;

	weft_out_init(&o);
	weft_run *r = weft_run_alloc("R2", def, NULL, NULL, 0, &o);
	weft_run_start(r, 0, &o);
	finish(r, idx(def, "a"), json_null(), &o);
	fail(r, idx(def, "b"), "boom", &o);
	cr_expect_eq(r->steps[idx(def, "b")].state, WEFT_STEP_FAILED);
	cr_expect_eq(r->state, WEFT_RUN_RUNNING, "c still runs");
	finish(r, idx(def, "c"), json_null(), &o);
	cr_expect_eq(r->steps[idx(def, "d")].state, WEFT_STEP_SKIPPED);
	cr_expect_eq(r->state, WEFT_RUN_FAILED);
	cr_expect_eq(count_events(&o, "run_failed"), 1);
	cr_expect_eq(count_events(&o, "step_skipped"), 1);
	weft_out_fini(&o);
	weft_run_free(r);
	weft_def_free(def);
}

Test(run, trigger_all_done_runs_after_failure)
{
	weft_def *def = def_of(
	    "{\"name\":\"t\",\"steps\":[{\"id\":\"a\",\"type\":\"fail\"},"
	    "{\"id\":\"cleanup\",\"type\":\"noop\",\"depends_on\":[\"a\"],"
	    "\"trigger\":\"all_done\"},{\"id\":\"next\",\"type\":\"noop\","
	    "\"depends_on\":[\"a\"]}]}");
	weft_out o;

	weft_out_init(&o);
	weft_run *r = weft_run_alloc("R3", def, NULL, NULL, 0, &o);
	weft_run_start(r, 0, &o);
	fail(r, idx(def, "a"), "nope", &o);
	cr_expect_eq(r->steps[idx(def, "cleanup")].state, WEFT_STEP_READY);
	cr_expect_eq(r->steps[idx(def, "next")].state, WEFT_STEP_SKIPPED);
	weft_out_fini(&o);
	weft_run_free(r);
	weft_def_free(def);
}

Test(run, when_false_skips)
{
	weft_def *def = def_of(
	    "{\"name\":\"w\",\"steps\":[{\"id\":\"a\",\"type\":\"echo\"},"
	    "{\"id\":\"b\",\"type\":\"noop\",\"depends_on\":[\"a\"],"
	    "\"when\":\"steps.a.output.n > 5\"},{\"id\":\"c\",\"type\":\"noop\","
	    "\"depends_on\":[\"a\"],\"when\":\"steps.a.output.n < 5\"}]}");
	weft_out o;

	weft_out_init(&o);
	weft_run *r = weft_run_alloc("R4", def, NULL, NULL, 0, &o);
	weft_run_start(r, 0, &o);
	finish(r, idx(def, "a"), json_pack("{s:i}", "n", 3), &o);
	cr_expect_eq(r->steps[idx(def, "b")].state, WEFT_STEP_SKIPPED);
	cr_expect_eq(r->steps[idx(def, "c")].state, WEFT_STEP_READY);
	weft_out_fini(&o);
	weft_run_free(r);
	weft_def_free(def);
}

Test(run, retry_then_success_and_stale_result_ignored)
{
	weft_def *def = def_of(
	    "{\"name\":\"r\",\"steps\":[{\"id\":\"a\",\"type\":\"fail\","
	    "\"retry\":{\"max_attempts\":3,\"backoff\":\"fixed\","
	    "\"initial_ms\":100}}]}");
	weft_out o;

	weft_out_init(&o);
	weft_run *r = weft_run_alloc("R5", def, NULL, NULL, 0, &o);
	weft_run_start(r, 0, &o);
	fail(r, 0, "first", &o);
	cr_expect_eq(r->steps[0].state, WEFT_STEP_RETRY_WAIT);
	cr_expect(has_effect(&o, WEFT_EFFECT_RETRY_TIMER, 0));
	cr_expect_eq(r->steps[0].due_ms, 1101);
	cr_expect_eq(weft_run_retry_due(r, 0, 1, &o), WEFT_OK);
	cr_expect_eq(r->steps[0].state, WEFT_STEP_READY);
	cr_expect_eq(weft_run_retry_due(r, 0, 1, &o), WEFT_ESTATE,
	    "a repeated timer changes nothing");
	cr_assert_eq(weft_run_dispatched(r, 0, "w2", 2000, &o), WEFT_OK);
	cr_expect_eq(r->steps[0].attempt, 2);

	// A late result of attempt 1 is recorded as ignored, not applied.
	weft_result late = { .attempt = 1, .ok = true, .node = "w1" };
	size_t      before = o.nevents;
	cr_expect_eq(weft_run_result(r, 0, &late, 2001, &o), WEFT_ESTATE);
	cr_expect_eq(o.nevents, before + 1);
	cr_expect_str_eq(o.events[before].type, "result_ignored");
	cr_expect_eq(r->steps[0].state, WEFT_STEP_DISPATCHED);

	weft_result ok = { .attempt = 2, .ok = true, .node = "w2" };
	cr_expect_eq(weft_run_result(r, 0, &ok, 2002, &o), WEFT_OK);
	cr_expect_eq(r->state, WEFT_RUN_SUCCEEDED);
	// The same result again (a re-send before our ack) is dropped
	// silently: at most one terminal event per attempt.
	before = o.nevents;
	cr_expect_eq(weft_run_result(r, 0, &ok, 2003, &o), WEFT_ESTATE);
	cr_expect_eq(o.nevents, before);
	cr_expect_eq(count_events(&o, "step_succeeded"), 1);
	weft_out_fini(&o);
	weft_run_free(r);
	weft_def_free(def);
}

Test(run, retries_exhausted_fail)
{
	weft_def *def = def_of(
	    "{\"name\":\"r\",\"steps\":[{\"id\":\"a\",\"type\":\"fail\","
	    "\"retry\":{\"max_attempts\":2,\"initial_ms\":10}}]}");
	weft_out o;

	weft_out_init(&o);
	weft_run *r = weft_run_alloc("R6", def, NULL, NULL, 0, &o);
	weft_run_start(r, 0, &o);
	fail(r, 0, "one", &o);
	weft_run_retry_due(r, 0, 1, &o);
	fail(r, 0, "two", &o);
	cr_expect_eq(r->steps[0].state, WEFT_STEP_FAILED);
	cr_expect_str_eq(r->steps[0].error, "two");
	cr_expect_eq(r->state, WEFT_RUN_FAILED);
	weft_out_fini(&o);
	weft_run_free(r);
	weft_def_free(def);
}

Test(run, lost_attempt_is_retried_and_releases_slot)
{
	weft_def *def = def_of(
	    "{\"name\":\"l\",\"steps\":[{\"id\":\"a\",\"type\":\"sleep\"}]}");
	weft_out o;

	weft_out_init(&o);
	weft_run *r = weft_run_alloc("R7", def, NULL, NULL, 0, &o);
	weft_run_start(r, 0, &o);
	weft_run_dispatched(r, 0, "w1", 10, &o);
	weft_run_accepted(r, 0, 1, &o);
	cr_expect_eq(weft_run_lost(r, 0, 20, &o), WEFT_OK);
	cr_expect_eq(r->steps[0].state, WEFT_STEP_RETRY_WAIT,
	    "a loss is retried even without a retry policy");
	cr_expect(has_effect(&o, WEFT_EFFECT_RELEASE, 0));
	cr_expect_eq(count_events(&o, "step_lost"), 1);
	cr_expect_eq(weft_run_lost(r, 0, 21, &o), WEFT_ESTATE,
	    "nothing in flight to lose");
	weft_out_fini(&o);
	weft_run_free(r);
	weft_def_free(def);
}

Test(run, cancel_aborts_in_flight_and_cancels_rest)
{
	weft_def *def = def_of(diamond);
	weft_out  o;

	weft_out_init(&o);
	weft_run *r = weft_run_alloc("R8", def, NULL, NULL, 0, &o);
	weft_run_start(r, 0, &o);
	weft_run_dispatched(r, idx(def, "a"), "w1", 10, &o);
	cr_expect_eq(weft_run_cancel(r, "test", &o), WEFT_OK);
	cr_expect_eq(r->state, WEFT_RUN_CANCELLED);
	cr_expect(has_effect(&o, WEFT_EFFECT_ABORT, idx(def, "a")));
	cr_expect_eq(count_events(&o, "step_cancelled"), 4);
	cr_expect_eq(weft_run_cancel(r, "again", &o), WEFT_ESTATE);
	// The run can be retried, and starts where it stopped.
	cr_expect_eq(weft_run_retry(r, &o), WEFT_OK);
	cr_expect_eq(r->state, WEFT_RUN_RUNNING);
	cr_expect_eq(r->steps[idx(def, "a")].state, WEFT_STEP_READY);
	cr_expect_eq(r->steps[idx(def, "d")].state, WEFT_STEP_PENDING);
	weft_out_fini(&o);
	weft_run_free(r);
	weft_def_free(def);
}

Test(run, pause_holds_new_work_until_resume)
{
	weft_def *def = def_of(diamond);
	weft_out  o;

	weft_out_init(&o);
	weft_run *r = weft_run_alloc("R9", def, NULL, NULL, 0, &o);
	weft_run_start(r, 0, &o);
	weft_run_dispatched(r, idx(def, "a"), "w1", 10, &o);
	cr_expect_eq(weft_run_pause(r, &o), WEFT_OK);
	weft_out_reset(&o);
	weft_result ok = { .attempt = 1, .ok = true, .node = "w1" };
	weft_run_result(r, idx(def, "a"), &ok, 20, &o);
	cr_expect_eq(r->steps[idx(def, "b")].state, WEFT_STEP_READY);
	cr_expect_eq(weft_run_dispatched(r, idx(def, "b"), "w1", 21, &o),
	    WEFT_ESTATE, "a paused run dispatches nothing");
	weft_out_reset(&o);
	cr_expect_eq(weft_run_resume(r, &o), WEFT_OK);
	cr_expect(has_effect(&o, WEFT_EFFECT_ENQUEUE, idx(def, "b")));
	cr_expect(has_effect(&o, WEFT_EFFECT_ENQUEUE, idx(def, "c")));
	weft_out_fini(&o);
	weft_run_free(r);
	weft_def_free(def);
}

Test(run, unrenderable_input_fails_step)
{
	weft_def *def = def_of(
	    "{\"name\":\"u\",\"steps\":[{\"id\":\"a\",\"type\":\"echo\","
	    "\"with\":{\"x\":\"${input.missing}\"}}]}");
	weft_out o;
	char     err[256];

	weft_out_init(&o);
	weft_run *r = weft_run_alloc("R10", def, NULL, NULL, 0, &o);
	weft_run_start(r, 0, &o);
	cr_expect_null(weft_run_step_input(r, 0, err, sizeof(err)));
	cr_expect(strstr(err, "input.missing") != NULL, "%s", err);
	cr_expect_eq(weft_run_fail_step(r, 0, err, 5, &o), WEFT_OK);
	cr_expect_eq(r->state, WEFT_RUN_FAILED);
	weft_out_fini(&o);
	weft_run_free(r);
	weft_def_free(def);
}

Test(run, long_chain_of_skips_does_not_recurse)
{
	// 20,000 steps in a chain; the first fails and every other one is
	// skipped through the worklist, not the C stack.
	size_t n   = 20000;
	size_t cap = n * 80 + 100;
	char  *buf = malloc(cap);
	size_t len = (size_t) snprintf(buf, cap,
            "{\"name\":\"c\",\"steps\":[{\"id\":\"s0\",\"type\":\"noop\"}");
	for (size_t i = 1; i < n; i++) {
		len += (size_t) snprintf(buf + len, cap - len,
		    ",{\"id\":\"s%zu\",\"type\":\"noop\",\"depends_on\":[\"s%zu\"]}",
		    i, i - 1);
	}
	snprintf(buf + len, cap - len, "]}");
	weft_def *def = def_of(buf);
	free(buf);
	weft_out o;
	weft_out_init(&o);
	weft_run *r = weft_run_alloc("R11", def, NULL, NULL, 0, &o);
	weft_run_start(r, 0, &o);
	fail(r, 0, "x", &o);
	cr_expect_eq(count_events(&o, "step_skipped"), (int) n - 1);
	cr_expect_eq(r->state, WEFT_RUN_FAILED);
	weft_out_fini(&o);
	weft_run_free(r);
	weft_def_free(def);
}
