// expand_test: dynamic expansion in the run model: an "expand" step's
// output spliced in as "<step>.<id>" steps, the step ending when they all
// have, nesting up to max_depth, bad expansions failing the step with the
// check's message, a run retry discarding the expansion, and a restore
// rebuilding it. Tables where the cases are alike.
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "def.h"
#include "expand.h"
#include "run.h"
#include "tdef.h"
#include "tjson.h"
#include "trun.h"

#define T_TIMEOUT (30 * WEFT_TEST_MULT)

// fetch -> plan (expand) -> report: the definition most cases run.
#define PLAN_DEF(extra)                                                     \
	"{'name':'g'" extra ",'steps':["                                    \
	"{'id':'fetch','type':'t'},"                                        \
	"{'id':'plan','type':'t','expand':true,'depends_on':['fetch']},"     \
	"{'id':'report','type':'t','depends_on':['plan'],"                   \
	"'with':{'r':'${steps.plan.output}'}}]}"

// The seeds' shape: design -> backend, frontend -> test.
#define GRAPH                                                               \
	"{'goal':'auth','steps':["                                          \
	"{'id':'design','type':'t','depends_on':['fetch'],"                  \
	"'with':{'g':'${steps.plan.output.goal}'}},"                        \
	"{'id':'backend','type':'t','depends_on':['design']},"              \
	"{'id':'frontend','type':'t','depends_on':['design']},"             \
	"{'id':'test','type':'t','depends_on':['backend','frontend']}]}"

static weft_run *
run_of(const weft_def *def, weft_out *o)
{
	json_t   *params = NULL;
	char      err[256];
	weft_run *r;

	cr_assert_eq(weft_def_bind_params(def, NULL, &params, err, sizeof(err)),
	    WEFT_OK, "%s", err);
	r = weft_run_alloc("RX", def, NULL, params, 0, o);
	cr_assert_eq(weft_run_start(r, 0, o), WEFT_OK);
	return (r);
}

static long
idx(const weft_run *r, const char *id)
{
	long i = weft_def_find(r->def, id);
	cr_assert_geq(i, 0, "no step %s", id);
	return (i);
}

static enum weft_step_state
state(const weft_run *r, const char *id)
{
	return (r->steps[idx(r, id)].state);
}

// end_step dispatches step id and ends it: ok with output (JSON text, '
// for "), or failed.
static void
end_step(weft_run *r, const char *id, bool ok, const char *output, weft_out *o)
{
	weft_ref u   = WEFT_REF(idx(r, id));
	json_t  *out = output ? weft_t_json(output) : json_null();

	cr_assert_eq(weft_run_unit(r, u)->state, WEFT_STEP_READY, "%s ready", id);
	cr_assert_eq(weft_run_dispatched(r, u, "w1", 10, o), WEFT_OK);
	weft_result res = { .attempt = weft_run_unit(r, u)->attempt, .ok = ok,
		.output = out, .error = "exit 3: boom", .exit_code = 3,
		.node = "w1" };
	cr_assert_eq(weft_run_result(r, u, &res, 11, o), WEFT_OK, "%s", id);
	json_decref(out);
}

static const weft_out_event *
last_event(const weft_out *o, enum weft_event_type type)
{
	for (size_t k = o->nevents; k-- > 0;) {
		if (o->events[k].type == type) {
			return (&o->events[k]);
		}
	}
	return (NULL);
}

Test(expand, splices_and_waits, .timeout = T_TIMEOUT)
{
	weft_def *def = weft_t_def_sq(PLAN_DEF(""));
	weft_out  o;
	weft_run *r;

	weft_out_init(&o);
	r = run_of(def, &o);
	end_step(r, "fetch", true, "{'n':1}", &o);
	end_step(r, "plan", true, GRAPH, &o);
	cr_assert_eq(state(r, "plan"), WEFT_STEP_RUNNING, "plan: %s",
	    r->steps[1].error);
	// Spliced after the definition's steps, in full ids and deps.
	cr_assert_eq(r->def->nsteps, 7);
	cr_assert_str_eq(r->def->steps[3].id, "plan.design");
	cr_assert_str_eq(r->def->steps[r->def->steps[3].deps[0]].id, "fetch");
	cr_assert_eq(r->def->steps[6].ndeps, 2);
	cr_assert_eq(r->def->steps[6].parent, 1);
	cr_assert_eq(r->def->nsinks, 1, "expansion steps are no sinks");
	const weft_out_event *ex = last_event(&o, WEFT_EV_STEP_EXPANDED);
	cr_assert_not_null(ex);
	cr_assert_str_eq(json_string_value(json_object_get(json_array_get(
	                     json_object_get(ex->data, "steps"), 3), "id")),
	    "plan.test");
	cr_assert_eq(json_integer_value(json_object_get(ex->data, "depth")), 1);
	// The expanding step holds no worker, and runs until they all end.
	cr_assert_eq(state(r, "plan"), WEFT_STEP_RUNNING);
	cr_assert_str_eq(r->steps[1].node, "");
	cr_assert_eq(state(r, "plan.design"), WEFT_STEP_READY);
	cr_assert_eq(state(r, "plan.backend"), WEFT_STEP_PENDING);
	// design reads fetch and plan's output by their own ids.
	char    err[256];
	json_t *in = weft_run_step_input(r, WEFT_REF(idx(r, "plan.design")),
	    err, sizeof(err));
	cr_assert_not_null(in, "%s", err);
	cr_assert_str_eq(json_string_value(json_object_get(json_object_get(in,
	                     "with"), "g")), "auth");
	cr_assert_not_null(json_object_get(json_object_get(in, "steps"), "fetch"));
	json_decref(in);
	end_step(r, "plan.design", true, "'d'", &o);
	end_step(r, "plan.backend", true, "'b'", &o);
	cr_assert_eq(state(r, "plan"), WEFT_STEP_RUNNING);
	end_step(r, "plan.frontend", true, "'f'", &o);
	cr_assert_eq(state(r, "report"), WEFT_STEP_PENDING, "waits for all of it");
	in = weft_run_step_input(r, WEFT_REF(idx(r, "plan.test")), err,
	    sizeof(err));
	cr_assert_not_null(json_object_get(json_object_get(in, "steps"), "backend"));
	json_decref(in);
	// Written as text, the same: its dependencies and its parent, plan.
	weft_t_expect_input_text(r, idx(r, "plan.test"));
	end_step(r, "plan.test", true, "{'passed':3}", &o);
	// Its output: the leaves' outputs by their own ids.
	cr_assert_eq(state(r, "plan"), WEFT_STEP_SUCCEEDED);
	cr_assert_eq(json_integer_value(json_object_get(json_object_get(
	                 r->steps[1].output, "test"), "passed")), 3);
	cr_assert_eq(json_object_size(r->steps[1].output), 1);
	cr_assert_eq(state(r, "report"), WEFT_STEP_READY);
	end_step(r, "report", true, "1", &o);
	cr_assert_eq(r->state, WEFT_RUN_SUCCEEDED);
	weft_run_free(r);
	weft_def_free(def);
	weft_out_fini(&o);
}

// Bad expansions: each fails plan with the check's message, in the step's
// error and its step_failed event.
struct bad_case {
	const char *name;
	const char *extra;  // top-level definition fields
	const char *output; // what plan returns
	const char *want;   // in the error
};

static const struct bad_case bad_cases[] = {
	{ "not an object", "", "'plan it'", "the output is a JSON string, not an object" },
	{ "no steps", "", "{'goal':1}", "missing field \"steps\"" },
	{ "steps not an array", "", "{'steps':{}}", "field \"steps\": expected an array of steps, got object" },
	{ "no step", "", "{'steps':[]}", "needs at least one step" },
	{ "step not an object", "", "{'steps':[3]}", "steps[0]: expected an object" },
	{ "duplicate ids", "",
	    "{'steps':[{'id':'a','type':'t'},{'id':'a','type':'t'}]}",
	    "steps[1] (id \"a\"): duplicate id" },
	{ "unknown dependency", "",
	    "{'steps':[{'id':'a','type':'t','depends_on':['nope']}]}",
	    "unknown dependency \"nope\"" },
	{ "cycle", "",
	    "{'steps':[{'id':'a','type':'t','depends_on':['b']},"
	    "{'id':'b','type':'t','depends_on':['a']}]}",
	    "cycle: a -> b -> a" },
	{ "id of the expanding step", "", "{'steps':[{'id':'plan','type':'t'}]}",
	    "id \"plan\" is taken by the expanding step" },
	{ "id of a dependency", "", "{'steps':[{'id':'fetch','type':'t'}]}",
	    "taken by a dependency of the expanding step" },
	{ "depends", "",
	    "{'steps':[{'id':'a','type':'t','depends':'fetch.succeeded'}]}",
	    "field \"depends\" is not supported in an expansion" },
	{ "unknown field", "", "{'steps':[{'id':'a','type':'t','x':1}]}",
	    "unknown field \"x\"" },
	{ "reads a step it does not depend on", "",
	    "{'steps':[{'id':'a','type':'t'},{'id':'b','type':'t',"
	    "'with':{'v':'${steps.a.output}'}}]}",
	    "step \"a\" is not in depends_on" },
	{ "bad id", "", "{'steps':[{'id':'a.b','type':'t'}]}",
	    "field \"id\": must be" },
	{ "too deep", ",'max_depth':0", "{'steps':[{'id':'a','type':'t'}]}",
	    "depth 1 exceeds the definition's max_depth of 0" },
};

Test(expand, bad_expansions_fail_the_step, .timeout = T_TIMEOUT)
{
	for (size_t c = 0; c < sizeof(bad_cases) / sizeof(bad_cases[0]); c++) {
		const struct bad_case *bc = &bad_cases[c];
		char                   text[1024];
		weft_def              *def;
		weft_out               o;
		weft_run              *r;
		snprintf(text, sizeof(text), PLAN_DEF("%s"), bc->extra);
		def = weft_t_def_sq(text);
		weft_out_init(&o);
		r = run_of(def, &o);
		end_step(r, "fetch", true, "1", &o);
		end_step(r, "plan", true, bc->output, &o);
		cr_assert_eq(state(r, "plan"), WEFT_STEP_FAILED, "%s", bc->name);
		cr_assert_eq(r->def, def, "%s: nothing spliced", bc->name);
		cr_assert_not_null(strstr(r->steps[1].error, bc->want),
		    "%s: error %s", bc->name, r->steps[1].error);
		cr_assert_not_null(strstr(r->steps[1].error,
		                       "expansion of step plan: "),
		    "%s: %s", bc->name, r->steps[1].error);
		const weft_out_event *f = last_event(&o, WEFT_EV_STEP_FAILED);
		cr_assert_str_eq(json_string_value(json_object_get(f->data,
		                     "error")), r->steps[1].error, "%s", bc->name);
		cr_assert_eq(state(r, "report"), WEFT_STEP_UPSTREAM_FAILED);
		cr_assert_eq(r->state, WEFT_RUN_FAILED, "%s", bc->name);
		weft_run_free(r);
		weft_def_free(def);
		weft_out_fini(&o);
	}
}

Test(expand, too_many_steps, .timeout = T_TIMEOUT)
{
	weft_def *def = weft_t_def_sq(PLAN_DEF(""));
	json_t   *steps = json_array(), *out;
	weft_out  o;
	weft_run *r;
	char      id[32];

	for (unsigned k = 0; k <= WEFT_EXPAND_MAX_STEPS; k++) {
		snprintf(id, sizeof(id), "s%u", k);
		json_array_append_new(steps, json_pack("{s:s, s:s}", "id", id,
		    "type", "t"));
	}
	out = json_pack("{s:o}", "steps", steps);
	weft_out_init(&o);
	r = run_of(def, &o);
	end_step(r, "fetch", true, "1", &o);
	weft_ref u = WEFT_REF(1);
	cr_assert_eq(weft_run_dispatched(r, u, "w1", 10, &o), WEFT_OK);
	weft_result res = { .attempt = 1, .ok = true, .output = out, .node = "w1" };
	cr_assert_eq(weft_run_result(r, u, &res, 11, &o), WEFT_OK);
	cr_assert_not_null(strstr(r->steps[1].error,
	    "1001 steps exceed the limit of 1000 steps per expansion"),
	    "%s", r->steps[1].error);
	json_decref(out);
	weft_run_free(r);
	weft_def_free(def);
	weft_out_fini(&o);
}

// Nesting: an expansion's step expands in turn, up to max_depth.
struct nest_case {
	const char          *name;
	const char          *extra;
	enum weft_step_state want; // plan's end
	const char          *error; // in plan's error, or NULL
};

static const struct nest_case nest_cases[] = {
	{ "within max_depth", "", WEFT_STEP_SUCCEEDED, NULL },
	{ "max_depth 2", ",'max_depth':2", WEFT_STEP_SUCCEEDED, NULL },
	{ "over max_depth", ",'max_depth':1", WEFT_STEP_FAILED,
	    "expansion failed: step plan.a failed: expansion of step plan.a: "
	    "depth 2 exceeds the definition's max_depth of 1" },
};

Test(expand, nesting_up_to_max_depth, .timeout = T_TIMEOUT)
{
	for (size_t c = 0; c < sizeof(nest_cases) / sizeof(nest_cases[0]); c++) {
		const struct nest_case *nc = &nest_cases[c];
		char                    text[1024];
		weft_def               *def;
		weft_out                o;
		weft_run               *r;
		snprintf(text, sizeof(text), PLAN_DEF("%s"), nc->extra);
		def = weft_t_def_sq(text);
		weft_out_init(&o);
		r = run_of(def, &o);
		end_step(r, "fetch", true, "1", &o);
		end_step(r, "plan", true,
		    "{'steps':[{'id':'a','type':'t','expand':true},"
		    "{'id':'z','type':'t','depends_on':['a']}]}", &o);
		end_step(r, "plan.a", true,
		    "{'steps':[{'id':'x','type':'t','with':"
		    "{'v':'${steps.a.output.steps[0].id}'}}]}", &o);
		if (nc->error == NULL) {
			cr_assert_eq(state(r, "plan.a"), WEFT_STEP_RUNNING);
			cr_assert_eq(r->def->steps[idx(r, "plan.a.x")].parent,
			    idx(r, "plan.a"));
			end_step(r, "plan.a.x", true, "'x'", &o);
			cr_assert_eq(state(r, "plan.a"), WEFT_STEP_SUCCEEDED);
			cr_assert_str_eq(json_string_value(json_object_get(
			    r->steps[idx(r, "plan.a")].output, "x")), "x");
			end_step(r, "plan.z", true, "'z'", &o);
		}
		cr_assert_eq(state(r, "plan"), nc->want, "%s", nc->name);
		if (nc->error != NULL) {
			cr_assert_str_eq(r->steps[1].error, nc->error, "%s: %s",
			    nc->name, r->steps[1].error);
			cr_assert_eq(state(r, "plan.z"),
			    WEFT_STEP_UPSTREAM_FAILED);
		}
		weft_run_free(r);
		weft_def_free(def);
		weft_out_fini(&o);
	}
}

// A step of the expansion fails: the expansion still runs its trigger
// rules to the end (cleanup, all_done, runs), then plan fails naming it;
// under status_from leaves a handled failure off the leaves is fine.
struct fail_case {
	const char          *name;
	const char          *extra;
	enum weft_step_state want;
};

static const struct fail_case fail_cases[] = {
	{ "status_from all", "", WEFT_STEP_FAILED },
	{ "status_from leaves", ",'status_from':'leaves'", WEFT_STEP_SUCCEEDED },
};

Test(expand, failure_respects_trigger_rules, .timeout = T_TIMEOUT)
{
	for (size_t c = 0; c < sizeof(fail_cases) / sizeof(fail_cases[0]); c++) {
		const struct fail_case *fc = &fail_cases[c];
		char                    text[1024];
		weft_def               *def;
		weft_out                o;
		weft_run               *r;
		snprintf(text, sizeof(text), PLAN_DEF("%s"), fc->extra);
		def = weft_t_def_sq(text);
		weft_out_init(&o);
		r = run_of(def, &o);
		end_step(r, "fetch", true, "1", &o);
		end_step(r, "plan", true,
		    "{'steps':[{'id':'a','type':'t'},{'id':'cleanup','type':'t',"
		    "'depends_on':['a'],'trigger':'all_done'}]}", &o);
		end_step(r, "plan.a", false, NULL, &o);
		cr_assert_eq(state(r, "plan"), WEFT_STEP_RUNNING, "%s", fc->name);
		end_step(r, "plan.cleanup", true, "'c'", &o);
		cr_assert_eq(state(r, "plan"), fc->want, "%s", fc->name);
		if (fc->want == WEFT_STEP_FAILED) {
			cr_assert_str_eq(r->steps[1].error,
			    "expansion failed: step plan.a failed: exit 3: boom");
			cr_assert_eq(state(r, "report"), WEFT_STEP_UPSTREAM_FAILED);
		}
		weft_run_free(r);
		weft_def_free(def);
		weft_out_fini(&o);
	}
}

// A run retry: plan starts over and its expansion is discarded (the
// definition is the run's own again); the new expansion may differ.
Test(expand, retry_discards_the_expansion, .timeout = T_TIMEOUT)
{
	weft_def *def = weft_t_def_sq(PLAN_DEF(""));
	weft_out  o;
	weft_run *r;

	weft_out_init(&o);
	r = run_of(def, &o);
	end_step(r, "fetch", true, "1", &o);
	end_step(r, "plan", true, GRAPH, &o);
	end_step(r, "plan.design", false, NULL, &o);
	cr_assert_eq(r->state, WEFT_RUN_FAILED);
	cr_assert_eq(weft_run_retry(r, 100, &o), WEFT_OK);
	cr_assert_eq(r->def, def, "back to the run's own definition");
	cr_assert_eq(r->def_own, NULL);
	cr_assert_eq(r->nended, 1, "fetch kept its success");
	cr_assert_eq(state(r, "plan"), WEFT_STEP_READY);
	end_step(r, "plan", true, "{'steps':[{'id':'only','type':'t'}]}", &o);
	cr_assert_eq(r->def->nsteps, 4);
	end_step(r, "plan.only", true, "2", &o);
	end_step(r, "report", true, "3", &o);
	cr_assert_eq(r->state, WEFT_RUN_SUCCEEDED);
	weft_run_free(r);
	weft_def_free(def);
	weft_out_fini(&o);
}

// Cancel mid-expansion: everything ends cancelled, plan included.
Test(expand, cancel_mid_expansion, .timeout = T_TIMEOUT)
{
	weft_def *def = weft_t_def_sq(PLAN_DEF(""));
	weft_out  o;
	weft_run *r;

	weft_out_init(&o);
	r = run_of(def, &o);
	end_step(r, "fetch", true, "1", &o);
	end_step(r, "plan", true, GRAPH, &o);
	cr_assert_eq(weft_run_cancel(r, "test", &o), WEFT_OK);
	cr_assert_eq(state(r, "plan"), WEFT_STEP_CANCELLED);
	cr_assert_eq(state(r, "plan.test"), WEFT_STEP_CANCELLED);
	cr_assert_eq(r->state, WEFT_RUN_CANCELLED);
	// A late repeat of plan's result changes nothing.
	weft_result res = { .attempt = 1, .ok = true, .output = NULL, .node = "w1" };
	cr_assert_neq(weft_run_result(r, WEFT_REF(1), &res, 12, &o), WEFT_OK);
	weft_run_free(r);
	weft_def_free(def);
	weft_out_fini(&o);
}

// Recovery: a new run object from the same definition gets the expansion
// back from the step_expanded data, then the steps' states.
Test(expand, restore_rebuilds_the_expansion, .timeout = T_TIMEOUT)
{
	weft_def *def = weft_t_def_sq(PLAN_DEF(""));
	weft_out  o, o2;
	weft_run *r, *r2;

	weft_out_init(&o);
	weft_out_init(&o2);
	r = run_of(def, &o);
	end_step(r, "fetch", true, "1", &o);
	end_step(r, "plan", true, GRAPH, &o);
	end_step(r, "plan.design", true, "'d'", &o);
	const weft_out_event *ex = last_event(&o, WEFT_EV_STEP_EXPANDED);
	r2 = weft_run_alloc("RX", def, NULL, json_object(), 0, &o2);
	r2->state = WEFT_RUN_RUNNING;
	cr_assert(weft_run_restore_expansion(r2, "plan", ex->data));
	cr_assert_not(weft_run_restore_expansion(r2, "fetch", ex->data),
	    "not an expand step");
	cr_assert_eq(r2->def->nsteps, 7);
	for (size_t i = 0; i < r->def->nsteps; i++) {
		const weft_step_rt *s = &r->steps[i];
		cr_assert(weft_run_restore_step(r2, WEFT_REF(i), s->state,
		    s->attempt, s->node, s->output, s->error));
	}
	weft_run_restore_done(r2, &o2);
	cr_assert_eq(state(r2, "plan"), WEFT_STEP_RUNNING);
	cr_assert_eq(state(r2, "plan.backend"), WEFT_STEP_READY);
	cr_assert_eq(r2->steps[1].exp_ended, 1);
	json_t *in = weft_run_step_input(r2, WEFT_REF(idx(r2, "plan.backend")),
	    NULL, 0);
	cr_assert_str_eq(json_string_value(json_object_get(json_object_get(
	    json_object_get(json_object_get(in, "steps"), "plan"), "output"),
	    "goal")), "auth", "plan's output is back");
	json_decref(in);
	end_step(r2, "plan.backend", true, "1", &o2);
	end_step(r2, "plan.frontend", true, "1", &o2);
	end_step(r2, "plan.test", true, "1", &o2);
	cr_assert_eq(state(r2, "plan"), WEFT_STEP_SUCCEEDED);
	weft_run_free(r);
	weft_run_free(r2);
	weft_def_free(def);
	weft_out_fini(&o);
	weft_out_fini(&o2);
}

// Definition checks of the field itself.
struct def_case {
	const char *name;
	const char *json;
	const char *want; // NULL: valid
};

static const struct def_case def_cases[] = {
	{ "expand", "{'name':'d','steps':[{'id':'a','type':'t','expand':true}]}",
	    NULL },
	{ "expand not bool",
	    "{'name':'d','steps':[{'id':'a','type':'t','expand':1}]}",
	    "steps[0] (id \"a\"): field \"expand\": expected bool, got int" },
	{ "expand a map",
	    "{'name':'d','steps':[{'id':'a','type':'t','expand':true,"
	    "'map':[1]}]}",
	    "steps[0] (id \"a\"): field \"expand\": a map step cannot expand" },
	{ "expand a wait",
	    "{'name':'d','steps':[{'id':'a','type':'wait','expand':true,"
	    "'with':{'signal':'s'}}]}",
	    "field \"expand\": a wait step runs on the coordinator" },
	{ "max_depth", "{'name':'d','max_depth':16,'steps':[{'id':'a','type':'t'}]}",
	    NULL },
	{ "max_depth over",
	    "{'name':'d','max_depth':17,'steps':[{'id':'a','type':'t'}]}",
	    "definition: field \"max_depth\": must be between 0 and 16, got 17" },
	{ "max_depth not int",
	    "{'name':'d','max_depth':'5','steps':[{'id':'a','type':'t'}]}",
	    "field \"max_depth\": expected int, got string" },
};

Test(expand, definition_fields, .timeout = T_TIMEOUT)
{
	for (size_t c = 0; c < sizeof(def_cases) / sizeof(def_cases[0]); c++) {
		const struct def_case *dc = &def_cases[c];
		char                  *text = weft_t_dq(dc->json);
		weft_def              *def  = NULL;
		char                   err[512] = "";
		weft_err rv = weft_def_parse(&def, text, strlen(text), err,
		    sizeof(err));
		free(text);
		if (dc->want == NULL) {
			cr_assert_eq(rv, WEFT_OK, "%s: %s", dc->name, err);
		} else {
			cr_assert_neq(rv, WEFT_OK, "%s", dc->name);
			cr_assert_not_null(strstr(err, dc->want), "%s: %s",
			    dc->name, err);
		}
		weft_def_free(def);
	}
}
