// run_map_test: the run model's map steps beyond fan-out (literal lists,
// lists from params, per-item `when`, map_tolerate, `[*]` projections of
// the items' outputs) and what a failed dependency shows its dependents
// (error and exit_code), driven by tables where the cases are alike.
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "def.h"
#include "run.h"
#include "tdef.h"
#include "tjson.h"

#define T_TIMEOUT (30 * WEFT_TEST_MULT)

// run_of starts a run of def with input (JSON, ' for ") and params bound
// from given (NULL: defaults).
static weft_run *
run_of(const weft_def *def, const char *input, const char *given, weft_out *o)
{
	json_t  *params = NULL;
	json_t  *g      = given ? weft_t_json(given) : NULL;
	char     err[256];
	weft_run *r;

	cr_assert_eq(weft_def_bind_params(def, g, &params, err, sizeof(err)),
	    WEFT_OK, "%s", err);
	json_decref(g);
	r = weft_run_alloc("RM", def, input ? weft_t_json(input) : NULL, params, 0, o);
	cr_assert_eq(weft_run_start(r, 0, o), WEFT_OK);
	return (r);
}

// end_unit dispatches unit u and ends it: ok with output (JSON text), or
// failed with exit code 3.
static void
end_unit(weft_run *r, weft_ref u, bool ok, const char *output, weft_out *o)
{
	json_t *out = output ? weft_t_json(output) : json_null();

	cr_assert_eq(weft_run_dispatched(r, u, "w1", 10, o), WEFT_OK);
	weft_result res = { .attempt = weft_run_unit(r, u)->attempt, .ok = ok,
		.output = out, .error = "exit 3: boom", .exit_code = 3,
		.node = "w1" };
	cr_assert_eq(weft_run_result(r, u, &res, 11, o), WEFT_OK);
	json_decref(out);
}

static int
count_events(const weft_out *o, enum weft_event_type type, long item)
{
	int n = 0;
	for (size_t k = 0; k < o->nevents; k++) {
		n += o->events[k].type == type &&
		    (item == -2 || o->events[k].item == item);
	}
	return (n);
}

// Where the list comes from: each row's map step must expand into the
// same three items, whatever the source.
struct source_row {
	const char *name;
	const char *def;
	const char *input;
	const char *given;
};

#define SRC_STEPS(map) \
	"'steps':[{'id':'m','type':'echo','map':" map \
	",'with':{'x':'${item}','i':'${index}'}}]}"

static const struct source_row source_rows[] = {
	{ "literal", "{'name':'s'," SRC_STEPS("['a','b','c']"), NULL, NULL },
	{ "input", "{'name':'s'," SRC_STEPS("'input.xs'"), "{'xs':['a','b','c']}",
	    NULL },
	{ "params default",
	    "{'name':'s','params':{'xs':{'type':'array','default':['a','b',"
	    "'c']}}," SRC_STEPS("'params.xs'"),
	    NULL, NULL },
	{ "params given",
	    "{'name':'s','params':{'xs':{'type':'array'}}," SRC_STEPS(
	        "'params.xs'"),
	    NULL, "{'xs':['a','b','c']}" },
	{ "input projection", "{'name':'s'," SRC_STEPS("'input.rows[*].v'"),
	    "{'rows':[{'v':'a'},{'v':'b'},{'v':'c'}]}", NULL },
};

Test(run_map, list_sources_table, .timeout = T_TIMEOUT)
{
	for (size_t i = 0; i < sizeof(source_rows) / sizeof(source_rows[0]);
	     i++) {
		const struct source_row *row = &source_rows[i];
		weft_def *def = weft_t_def_sq(row->def);
		weft_out  o;
		char      err[128];

		weft_out_init(&o);
		weft_run *r = run_of(def, row->input, row->given, &o);
		cr_expect_eq(r->steps[0].state, WEFT_STEP_RUNNING, "%s",
		    row->name);
		cr_expect_eq(r->steps[0].nitems, 3, "%s", row->name);
		json_t *in = weft_run_step_input(
		    r, (weft_ref) { 0, 2 }, err, sizeof(err));
		cr_assert_not_null(in, "%s: %s", row->name, err);
		cr_expect_str_eq(json_string_value(json_object_get(
		                     json_object_get(in, "with"), "x")),
		    "c", "%s", row->name);
		json_decref(in);
		for (long k = 0; k < 3; k++) {
			end_unit(r, (weft_ref) { 0, k }, true, "{'k':1}", &o);
		}
		cr_expect_eq(r->state, WEFT_RUN_SUCCEEDED, "%s", row->name);
		weft_out_fini(&o);
		weft_run_free(r);
		weft_def_free(def);
	}
}

// Per-item `when`: rows of (list, when) and which items run.
struct when_row {
	const char *name;
	const char *list;
	const char *when;
	const char *runs; // one char per item: 'r' runs, 's' skipped
	enum weft_step_state want; // the map step once its items ended
};

static const struct when_row when_rows[] = {
	{ "by element", "[{'n':1},{'n':5},{'n':9}]", "item.n > 3", "srr",
	    WEFT_STEP_SUCCEEDED },
	{ "by index", "[1,2,3,4]", "index != 1 && index != 3", "rsrs",
	    WEFT_STEP_SUCCEEDED },
	{ "with params", "[1,2,3]", "item >= params.min", "srr",
	    WEFT_STEP_SUCCEEDED },
	{ "every item skipped", "[1,2]", "item > 10", "ss",
	    WEFT_STEP_SUCCEEDED },
	{ "none skipped", "[1,2]", "item > 0", "rr", WEFT_STEP_SUCCEEDED },
};

Test(run_map, when_per_item_table, .timeout = T_TIMEOUT)
{
	for (size_t i = 0; i < sizeof(when_rows) / sizeof(when_rows[0]); i++) {
		const struct when_row *row = &when_rows[i];
		char                   text[1024];
		weft_def              *def;
		weft_out               o;
		size_t                 n = strlen(row->runs);

		snprintf(text, sizeof(text),
		    "{'name':'w','params':{'min':{'type':'int','default':2}},"
		    "'steps':[{'id':'m','type':'echo','map':%s,'max_parallel':1,"
		    "'when':'%s'},{'id':'after','type':'noop','depends_on':"
		    "['m']}]}",
		    row->list, row->when);
		def = weft_t_def_sq(text);
		weft_out_init(&o);
		weft_run *r = run_of(def, NULL, NULL, &o);
		// max_parallel 1: skipped items hold no slot, so ending the
		// running one at a time must reach every item.
		for (size_t k = 0; k < n; k++) {
			weft_step_rt *u = weft_run_unit(r, (weft_ref) { 0, (long) k });
			if (row->runs[k] == 's') {
				cr_expect_eq(u->state, WEFT_STEP_SKIPPED,
				    "%s: item %zu", row->name, k);
				continue;
			}
			cr_expect_eq(u->state, WEFT_STEP_READY, "%s: item %zu",
			    row->name, k);
			end_unit(r, (weft_ref) { 0, (long) k }, true, "{'ok':1}", &o);
		}
		cr_expect_eq(r->steps[0].state, row->want, "%s", row->name);
		cr_expect_eq(r->steps[1].state, WEFT_STEP_READY,
		    "%s: the dependent runs", row->name);
		for (size_t k = 0; k < n; k++) {
			json_t *e = json_array_get(r->steps[0].output, k);
			cr_expect(row->runs[k] == 's' ? json_is_null(e)
			                              : json_is_object(e),
			    "%s: output %zu", row->name, k);
		}
		weft_out_fini(&o);
		weft_run_free(r);
		weft_def_free(def);
	}
}

// A step-level `when` (no item, no index) still skips the whole step.
Test(run_map, step_level_when_skips_the_step, .timeout = T_TIMEOUT)
{
	weft_def *def = weft_t_def_sq("{'name':'w','steps':[{'id':'m','type':'echo',"
	                       "'map':[1,2],'when':'input.go'}]}");
	weft_out  o;

	weft_out_init(&o);
	weft_run *r = run_of(def, "{'go':false}", NULL, &o);
	cr_expect_eq(r->steps[0].state, WEFT_STEP_SKIPPED);
	cr_expect_eq(r->steps[0].nitems, 0);
	cr_expect_eq(r->state, WEFT_RUN_SUCCEEDED);
	weft_out_fini(&o);
	weft_run_free(r);
	weft_def_free(def);
}

// map_tolerate: rows of (tolerate, which items fail) and the outcome.
struct tol_row {
	const char          *name;
	unsigned             tolerate;
	const char          *fails; // one char per item: 'f' fails, 'o' ok
	enum weft_step_state want;
	const char          *error; // substring, when failed
};

static const struct tol_row tol_rows[] = {
	{ "none tolerated, one fails", 0, "ofo", WEFT_STEP_FAILED,
	    "1 of 3 items failed; item 1: exit 3: boom" },
	{ "one tolerated, one fails", 1, "ofo", WEFT_STEP_SUCCEEDED, NULL },
	{ "one tolerated, two fail", 1, "ffo", WEFT_STEP_FAILED,
	    "2 of 3 items failed (map_tolerate exceeded); item 0" },
	{ "all tolerated", 3, "fff", WEFT_STEP_SUCCEEDED, NULL },
	{ "tolerance unused", 2, "ooo", WEFT_STEP_SUCCEEDED, NULL },
};

Test(run_map, tolerate_table, .timeout = T_TIMEOUT)
{
	for (size_t i = 0; i < sizeof(tol_rows) / sizeof(tol_rows[0]); i++) {
		const struct tol_row *row = &tol_rows[i];
		char                  text[512];
		weft_def             *def;
		weft_out              o;
		size_t                nf = 0;

		snprintf(text, sizeof(text),
		    "{'name':'t','steps':[{'id':'m','type':'echo','map':[0,1,2],"
		    "'map_tolerate':%u},{'id':'after','type':'noop',"
		    "'depends_on':['m']}]}",
		    row->tolerate);
		def = weft_t_def_sq(text);
		weft_out_init(&o);
		weft_run *r = run_of(def, NULL, NULL, &o);
		for (long k = 0; k < 3; k++) {
			bool ok = row->fails[k] == 'o';
			nf += !ok;
			end_unit(r, (weft_ref) { 0, k }, ok, "{'v':1}", &o);
		}
		cr_expect_eq(r->steps[0].state, row->want, "%s", row->name);
		if (row->want == WEFT_STEP_FAILED) {
			cr_expect(r->steps[0].error != NULL &&
			        strstr(r->steps[0].error, row->error) != NULL,
			    "%s: error %s", row->name, r->steps[0].error);
			cr_expect_eq(r->steps[1].state,
			    WEFT_STEP_UPSTREAM_FAILED, "%s", row->name);
			cr_expect_eq(r->state, WEFT_RUN_FAILED, "%s", row->name);
		} else {
			// Failed items are null in the output, and named in
			// the step_succeeded event.
			const weft_out_event *ev = NULL;
			for (size_t k = 0; k < 3; k++) {
				json_t *e = json_array_get(r->steps[0].output, k);
				cr_expect(row->fails[k] == 'f' ? json_is_null(e)
				                               : json_is_object(e),
				    "%s: output %zu", row->name, k);
			}
			for (size_t k = 0; k < o.nevents; k++) {
				if (o.events[k].type == WEFT_EV_STEP_SUCCEEDED &&
				    o.events[k].item < 0) {
					ev = &o.events[k];
				}
			}
			cr_assert_not_null(ev, "%s", row->name);
			cr_expect_eq(json_array_size(json_object_get(
			                 ev->data, "failed_items")),
			    nf, "%s: failed_items", row->name);
			cr_expect_eq(r->steps[1].state, WEFT_STEP_READY, "%s",
			    row->name);
		}
		weft_out_fini(&o);
		weft_run_free(r);
		weft_def_free(def);
	}
}

// steps.m.output[*].score in a dependent's `with` and `when`: one value per
// item, in item order, null where an item has none.
Test(run_map, projection_in_with_and_when, .timeout = T_TIMEOUT)
{
	weft_def *def = weft_t_def_sq(
	    "{'name':'p','steps':[{'id':'m','type':'echo','map':[0,1,2],"
	    "'map_tolerate':1},"
	    "{'id':'best','type':'echo','depends_on':['m'],"
	    "'when':'contains(steps.m.output[*].score, 9)',"
	    "'with':{'scores':'${steps.m.output[*].score}',"
	    "'text':'s=${steps.m.output[*].score}'}},"
	    "{'id':'none','type':'echo','depends_on':['m'],"
	    "'when':'contains(steps.m.output[*].score, 4)'}]}");
	weft_out  o;
	char      err[256];

	weft_out_init(&o);
	weft_run *r = run_of(def, NULL, NULL, &o);
	end_unit(r, (weft_ref) { 0, 0 }, true, "{'score':3}", &o);
	end_unit(r, (weft_ref) { 0, 1 }, false, NULL, &o);
	end_unit(r, (weft_ref) { 0, 2 }, true, "{'score':9}", &o);
	cr_assert_eq(r->steps[0].state, WEFT_STEP_SUCCEEDED);
	cr_expect_eq(r->steps[1].state, WEFT_STEP_READY);
	cr_expect_eq(r->steps[2].state, WEFT_STEP_SKIPPED);
	json_t *in = weft_run_step_input(r, WEFT_REF(1), err, sizeof(err));
	cr_assert_not_null(in, "%s", err);
	json_t *want = weft_t_json("[3,null,9]");
	cr_expect(json_equal(json_object_get(json_object_get(in, "with"),
	                         "scores"),
	              want),
	    "scores in item order");
	cr_expect_str_eq(json_string_value(json_object_get(
	                     json_object_get(in, "with"), "text")),
	    "s=[3,null,9]");
	json_decref(want);
	json_decref(in);
	weft_out_fini(&o);
	weft_run_free(r);
	weft_def_free(def);
}

// A failed dependency's error and exit_code are in its dependents'
// steps document: what an all_done step reads.
Test(run_map, failed_dependency_shows_error_and_exit_code,
    .timeout = T_TIMEOUT)
{
	weft_def *def = weft_t_def_sq(
	    "{'name':'f','steps':[{'id':'a','type':'exec','with':{'cmd':"
	    "['x']}},{'id':'report','type':'echo','depends_on':['a'],"
	    "'trigger':'all_done','when':'steps.a.exit_code == 3',"
	    "'with':{'why':'${steps.a.error}','code':'${steps.a.exit_code}'}}"
	    "]}");
	weft_out  o;
	char      err[256];

	weft_out_init(&o);
	weft_run *r = run_of(def, NULL, NULL, &o);
	end_unit(r, WEFT_REF(0), false, NULL, &o);
	cr_assert_eq(r->steps[0].state, WEFT_STEP_FAILED);
	cr_expect_eq(r->steps[1].state, WEFT_STEP_READY,
	    "when reads exit_code 3");
	json_t *in = weft_run_step_input(r, WEFT_REF(1), err, sizeof(err));
	cr_assert_not_null(in, "%s", err);
	json_t *a = json_object_get(json_object_get(in, "steps"), "a");
	cr_expect_str_eq(json_string_value(json_object_get(a, "status")),
	    "failed");
	cr_expect_str_eq(json_string_value(json_object_get(a, "error")),
	    "exit 3: boom");
	cr_expect_eq(json_integer_value(json_object_get(a, "exit_code")), 3);
	cr_expect_eq(json_integer_value(json_object_get(
	                 json_object_get(in, "with"), "code")),
	    3);
	json_decref(in);
	// A retry of the run forgets the old exit code with the old error.
	end_unit(r, WEFT_REF(1), true, "{}", &o);
	cr_expect_eq(r->state, WEFT_RUN_FAILED);
	cr_expect_eq(weft_run_retry(r, 20, &o), WEFT_OK);
	cr_expect_eq(r->steps[0].exit_code, 0);
	cr_expect_null(r->steps[0].error);
	weft_out_fini(&o);
	weft_run_free(r);
	weft_def_free(def);
}

// Restored after a restart, a map with skipped items and a tolerated
// failure ends as it would have.
Test(run_map, restore_keeps_skips_and_tolerance, .timeout = T_TIMEOUT)
{
	weft_def *def = weft_t_def_sq(
	    "{'name':'r','steps':[{'id':'m','type':'echo','map':[1,5,7,9],"
	    "'map_tolerate':1,'max_parallel':1,'when':'item > 2'}]}");
	weft_out  o;

	weft_out_init(&o);
	weft_run *r = weft_run_alloc("RR", def, NULL, NULL, 0, &o);
	r->state    = WEFT_RUN_RUNNING;
	cr_assert(weft_run_restore_step(r, WEFT_REF(0), WEFT_STEP_RUNNING, 0,
	    NULL, NULL, NULL));
	cr_assert(weft_run_restore_step(r, (weft_ref) { 0, 0 },
	    WEFT_STEP_SKIPPED, 0, NULL, NULL, NULL));
	cr_assert(weft_run_restore_step(r, (weft_ref) { 0, 1 }, WEFT_STEP_FAILED,
	    1, NULL, NULL, "bad"));
	weft_run_restore_done(r, &o);
	cr_expect_eq(weft_run_unit(r, (weft_ref) { 0, 2 })->state,
	    WEFT_STEP_READY, "the window is filled again");
	end_unit(r, (weft_ref) { 0, 2 }, true, "{'v':7}", &o);
	end_unit(r, (weft_ref) { 0, 3 }, true, "{'v':9}", &o);
	cr_expect_eq(r->steps[0].state, WEFT_STEP_SUCCEEDED);
	cr_expect_eq(r->state, WEFT_RUN_SUCCEEDED);
	cr_expect_eq(count_events(&o, WEFT_EV_STEP_SKIPPED, -2), 0,
	    "nothing skipped twice");
	weft_out_fini(&o);
	weft_run_free(r);
	weft_def_free(def);
}
