// sched_model_test: the pure parts of scheduling (issue 14 items 1, 2, 9):
// the ready heap's order (priority, critical path, age) and aging, the
// admission decision of the concurrency limits, the scheduling flags and
// definition fields with their refusals, the learned duration statistics
// and the critical path / ETA computation. Tables where there are cases.
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "admission.h"
#include "def.h"
#include "durations.h"
#include "readyq.h"
#include "waiting.h"

// ---- the ready heap ----

struct push {
	int32_t prio;
	int64_t rank;
	int64_t ready_ms;
};

struct heap_row {
	const char *name;
	int64_t     aging_ms;
	struct push in[8];
	size_t      n;
	int         want[8]; // indexes of `in`, in pop order
};

static const struct heap_row heap_rows[] = {
	{ "equal everything: FIFO", 0,
	    { { 0, 0, 0 }, { 0, 0, 0 }, { 0, 0, 0 }, { 0, 0, 0 } }, 4,
	    { 0, 1, 2, 3 } },
	{ "higher priority first, then age", 0,
	    { { 1, 0, 0 }, { 5, 0, 0 }, { 1, 0, 0 }, { 5, 0, 0 }, { -3, 0, 0 } },
	    5, { 1, 3, 0, 2, 4 } },
	{ "within a priority: longest remaining path first", 0,
	    { { 0, 50, 0 }, { 0, 2000, 0 }, { 0, 50, 0 }, { 0, 900, 0 } }, 4,
	    { 1, 3, 0, 2 } },
	{ "priority beats the critical path", 0,
	    { { 0, 9000, 0 }, { 1, 10, 0 } }, 2, { 1, 0 } },
	{ "aging: an old low-priority unit passes a new high one", 1000,
	    // made ready at 0 with priority 0 vs at 5000 with priority 3:
	    // by 5000 the first has aged 5 priorities
	    { { 0, 0, 0 }, { 3, 0, 5000 } }, 2, { 0, 1 } },
	{ "aging: not old enough yet", 1000,
	    { { 0, 0, 3000 }, { 3, 0, 5000 } }, 2, { 1, 0 } },
	{ "aging: same window, same priority: rank decides", 1000,
	    { { 2, 10, 4100 }, { 2, 500, 4900 } }, 2, { 1, 0 } },
	{ "negative priorities order too", 0,
	    { { -5, 0, 0 }, { -1, 0, 0 }, { -10, 0, 0 } }, 3, { 1, 0, 2 } },
};

Test(readyq, pops_in_priority_rank_age_order)
{
	for (size_t t = 0; t < sizeof(heap_rows) / sizeof(heap_rows[0]); t++) {
		const struct heap_row *row = &heap_rows[t];
		weft_readyq            q   = { 0 };
		weft_readyq_ent        ent;
		for (size_t i = 0; i < row->n; i++) {
			weft_readyq_push(&q,
			    weft_readyq_key(row->in[i].prio, row->in[i].ready_ms,
			        row->aging_ms),
			    row->in[i].rank, NULL, WEFT_REF(i));
		}
		for (size_t i = 0; i < row->n; i++) {
			cr_assert(weft_readyq_pop(&q, &ent), "%s", row->name);
			cr_expect_eq(ent.unit.step, row->want[i],
			    "%s: pop %zu gave %ld, want %d", row->name, i,
			    ent.unit.step, row->want[i]);
		}
		cr_expect_not(weft_readyq_pop(&q, &ent), "%s: empty", row->name);
		weft_readyq_fini(&q);
	}
}

static bool
drop_odd(const weft_readyq_ent *ent, void *arg)
{
	(*(int *) arg)++;
	return (ent->unit.step % 2 == 1);
}

Test(readyq, drop_keeps_the_order_of_the_rest)
{
	weft_readyq     q = { 0 };
	weft_readyq_ent ent;
	int             calls = 0;
	long            last  = -1;

	// 3000 units (past the first growth) of mixed priorities.
	for (long i = 0; i < 3000; i++) {
		weft_readyq_push(&q, (i * 7919) % 5, 0, NULL, WEFT_REF(i));
	}
	cr_expect_eq(weft_readyq_drop(&q, drop_odd, &calls), 1500);
	cr_expect_eq(calls, 3000, "drop asks once per entry");
	cr_expect_eq(q.count, 1500);
	int64_t key = INT64_MAX;
	while (weft_readyq_pop(&q, &ent)) {
		cr_assert_eq(ent.unit.step % 2, 0);
		cr_assert(ent.key < key || (ent.key == key && ent.unit.step > last),
		    "order broken at %ld", ent.unit.step);
		if (ent.key != key) {
			last = -1;
		}
		key  = ent.key;
		last = ent.unit.step;
	}
	weft_readyq_fini(&q);
}

Test(readyq, aging_key_is_time_invariant)
{
	// Two units' key difference is the same whenever it is compared:
	// priority minus whole aging periods since the epoch.
	cr_expect_eq(weft_readyq_key(7, 123456, 0), 7);
	cr_expect_eq(weft_readyq_key(7, 123456, 1000), 7 - 123);
	cr_expect_eq(weft_readyq_key(0, 0, 1000), 0);
	cr_expect_eq(weft_readyq_key(0, -1, 1000), 1, "floor, not truncation");
	cr_expect_eq(weft_readyq_key(INT32_MAX, 0, 1), INT32_MAX);
}

// ---- admission ----

struct admit_row {
	const char          *name;
	weft_limit_use       runs, def, key;
	bool                 has_key;
	enum weft_limit_kind want;
};

static const struct admit_row admit_rows[] = {
	{ "no limits at all", { 100, 0 }, { 100, 0 }, { 0, 0 }, false,
	    WEFT_LIMIT_NONE },
	{ "room under every limit", { 1, 2 }, { 0, 1 }, { 1, 2 }, true,
	    WEFT_LIMIT_NONE },
	{ "coordinator full", { 2, 2 }, { 0, 5 }, { 0, 5 }, true,
	    WEFT_LIMIT_RUNS },
	{ "definition full", { 1, 10 }, { 3, 3 }, { 0, 5 }, true,
	    WEFT_LIMIT_DEF },
	{ "key full", { 1, 10 }, { 1, 5 }, { 2, 2 }, true, WEFT_LIMIT_KEY },
	{ "key limit without a key does not apply", { 1, 10 }, { 1, 5 },
	    { 2, 2 }, false, WEFT_LIMIT_NONE },
	{ "the first full one is the reason", { 4, 4 }, { 9, 9 }, { 9, 9 },
	    true, WEFT_LIMIT_RUNS },
	{ "over a lowered limit (after a restart)", { 5, 2 }, { 0, 0 },
	    { 0, 0 }, false, WEFT_LIMIT_RUNS },
};

Test(admission, decides_from_a_table)
{
	for (size_t t = 0; t < sizeof(admit_rows) / sizeof(admit_rows[0]); t++) {
		const struct admit_row *r = &admit_rows[t];
		cr_expect_eq(weft_limit_admit(&r->runs, &r->def,
		                 r->has_key ? &r->key : NULL),
		    r->want, "%s", r->name);
	}
}

Test(admission, waiting_for_names_the_limit)
{
	weft_limit_use u = { 2, 2 };
	json_t        *o = weft_limit_waiting_for(WEFT_LIMIT_KEY, &u, "acme");

	cr_assert_not_null(o);
	cr_expect_str_eq(json_string_value(json_object_get(o, "reason")),
	    "concurrency_key");
	cr_expect_str_eq(json_string_value(json_object_get(o, "key")), "acme");
	cr_expect(strstr(json_string_value(json_object_get(o, "message")),
	              "\"acme\" allows 2 running runs") != NULL);
	json_decref(o);
	o = weft_limit_waiting_for(WEFT_LIMIT_RUNS, &u, NULL);
	cr_expect_str_eq(json_string_value(json_object_get(o, "reason")),
	    "max_running_runs");
	cr_expect(strstr(json_string_value(json_object_get(o, "message")),
	              "--max-running-runs") != NULL);
	json_decref(o);
	o = weft_limit_waiting_for(WEFT_LIMIT_DEF, &u, NULL);
	cr_expect_str_eq(json_string_value(json_object_get(o, "reason")),
	    "max_concurrent_runs");
	json_decref(o);
	cr_expect_null(weft_limit_waiting_for(WEFT_LIMIT_NONE, &u, NULL));
}

// ---- flags ----

struct flag_row {
	const char *arg;
	bool        ok;
	const char *type; // when ok
	uint32_t    n;
	const char *err;  // a part of the error otherwise
};

static const struct flag_row limit_rows[] = {
	{ "shell=4", true, "shell", 4, NULL },
	{ "gpu.big-1=1", true, "gpu.big-1", 1, NULL },
	{ "foo", false, NULL, 0, "--limit 'foo': want TYPE=N" },
	{ "=3", false, NULL, 0, "want TYPE=N" },
	{ "shell=", false, NULL, 0, "N must be a whole number" },
	{ "shell=0", false, NULL, 0, "N must be a whole number from 1" },
	{ "shell=-2", false, NULL, 0, "N must be a whole number" },
	{ "shell=3x", false, NULL, 0, "N must be a whole number" },
	{ "shell=99999999999", false, NULL, 0, "N must be a whole number" },
	{ "sh ell=2", false, NULL, 0, "the step type must be" },
	{ "", false, NULL, 0, "want TYPE=N" },
};

Test(flags, limit_type_n)
{
	for (size_t t = 0; t < sizeof(limit_rows) / sizeof(limit_rows[0]); t++) {
		const struct flag_row *r = &limit_rows[t];
		char                   type[130] = "", err[300] = "";
		uint32_t               n         = 0;
		bool ok = weft_limit_parse_type(r->arg, type, sizeof(type), &n, err,
		    sizeof(err));
		cr_expect_eq(ok, r->ok, "'%s': %s", r->arg, err);
		if (r->ok) {
			cr_expect_str_eq(type, r->type);
			cr_expect_eq(n, r->n);
		} else {
			cr_expect(strstr(err, r->err) != NULL, "'%s': got '%s'",
			    r->arg, err);
		}
	}
}

Test(flags, order)
{
	char err[200];
	bool critical = false;

	cr_expect(weft_order_parse("critical-path", &critical, err, sizeof(err)));
	cr_expect(critical);
	cr_expect(weft_order_parse("fifo", &critical, err, sizeof(err)));
	cr_expect_not(critical);
	cr_expect_not(weft_order_parse("bogus", &critical, err, sizeof(err)));
	cr_expect_str_eq(err, "--order 'bogus': want fifo or critical-path");
	cr_expect_not(weft_order_parse("FIFO", &critical, err, sizeof(err)));
}

// ---- definition fields ----

struct def_row {
	const char *name;
	const char *json;
	const char *err; // NULL: accepted
};

#define DEF_STEPS "\"steps\": [{\"id\": \"a\", \"type\": \"t\"}]"

static const struct def_row def_rows[] = {
	{ "priority, limits and a key",
	    "{\"name\": \"d\", \"priority\": 5, \"max_concurrent_runs\": 2, "
	    "\"concurrency\": {\"key\": \"${params.c}\", \"limit\": 2}, " DEF_STEPS
	    "}",
	    NULL },
	{ "negative priority", "{\"name\": \"d\", \"priority\": -3, " DEF_STEPS "}",
	    NULL },
	{ "priority not an integer",
	    "{\"name\": \"d\", \"priority\": \"x\", " DEF_STEPS "}",
	    "field \"priority\": expected int, got string" },
	{ "priority out of range",
	    "{\"name\": \"d\", \"priority\": 9999999999, " DEF_STEPS "}",
	    "field \"priority\": must be between" },
	{ "max_concurrent_runs 0",
	    "{\"name\": \"d\", \"max_concurrent_runs\": 0, " DEF_STEPS "}",
	    "field \"max_concurrent_runs\": must be between 1 and" },
	{ "concurrency not an object",
	    "{\"name\": \"d\", \"concurrency\": 2, " DEF_STEPS "}",
	    "field \"concurrency\": expected object, got int" },
	{ "concurrency without a key",
	    "{\"name\": \"d\", \"concurrency\": {\"limit\": 2}, " DEF_STEPS "}",
	    "missing required field \"concurrency.key\"" },
	{ "concurrency without a limit",
	    "{\"name\": \"d\", \"concurrency\": {\"key\": \"k\"}, " DEF_STEPS "}",
	    "missing required field \"concurrency.limit\"" },
	{ "concurrency limit 0",
	    "{\"name\": \"d\", \"concurrency\": {\"key\": \"k\", \"limit\": 0}, "
	    DEF_STEPS "}",
	    "field \"concurrency.limit\": must be between 1 and" },
	{ "concurrency key empty",
	    "{\"name\": \"d\", \"concurrency\": {\"key\": \"\", \"limit\": 1}, "
	    DEF_STEPS "}",
	    "field \"concurrency.key\": must be 1-512 characters" },
	{ "concurrency key not a string",
	    "{\"name\": \"d\", \"concurrency\": {\"key\": 3, \"limit\": 1}, "
	    DEF_STEPS "}",
	    "field \"concurrency.key\": expected string, got int" },
	{ "concurrency unknown field",
	    "{\"name\": \"d\", \"concurrency\": {\"key\": \"k\", \"limit\": 1, "
	    "\"per\": 2}, " DEF_STEPS "}",
	    "unknown field \"concurrency.per\"" },
	{ "step priority",
	    "{\"name\": \"d\", \"steps\": [{\"id\": \"a\", \"type\": \"t\", "
	    "\"priority\": 9}]}",
	    NULL },
	{ "step priority not an integer",
	    "{\"name\": \"d\", \"steps\": [{\"id\": \"a\", \"type\": \"t\", "
	    "\"priority\": 1.5}]}",
	    "steps[0] (id \"a\"): field \"priority\": expected int, got" },
};

Test(def, scheduling_fields_and_their_refusals)
{
	for (size_t t = 0; t < sizeof(def_rows) / sizeof(def_rows[0]); t++) {
		const struct def_row *r   = &def_rows[t];
		weft_def             *def = NULL;
		char                  err[512] = "";
		weft_err rv = weft_def_parse(&def, r->json, strlen(r->json), err,
		    sizeof(err));
		if (r->err == NULL) {
			cr_expect_eq(rv, WEFT_OK, "%s: %s", r->name, err);
		} else {
			cr_expect_neq(rv, WEFT_OK, "%s: accepted", r->name);
			cr_expect(strstr(err, r->err) != NULL, "%s: got '%s'",
			    r->name, err);
		}
		weft_def_free(def);
	}
}

Test(def, scheduling_fields_are_read)
{
	const char *j = "{\"name\": \"d\", \"priority\": 5, "
	                "\"max_concurrent_runs\": 2, \"concurrency\": {\"key\": "
	                "\"${params.c}\", \"limit\": 3}, \"steps\": [{\"id\": "
	                "\"a\", \"type\": \"t\", \"priority\": -2}, {\"id\": "
	                "\"b\", \"type\": \"t\"}]}";
	weft_def   *def;
	char        err[256];

	cr_assert_eq(weft_def_parse(&def, j, strlen(j), err, sizeof(err)),
	    WEFT_OK, "%s", err);
	cr_expect_eq(def->priority, 5);
	cr_expect_eq(def->max_concurrent_runs, 2);
	cr_expect_eq(def->concurrency_limit, 3);
	cr_expect_str_eq(json_string_value(def->concurrency_key), "${params.c}");
	cr_expect(def->steps[0].has_priority);
	cr_expect_eq(def->steps[0].priority, -2);
	cr_expect_not(def->steps[1].has_priority);
	weft_def_free(def);
}

// ---- learned durations ----

Test(durations, quantiles_mean_and_window)
{
	weft_dur d = { 0 };

	cr_expect_eq(weft_dur_quantile(&d, 0.5), -1, "no history");
	cr_expect_eq(weft_dur_mean(&d), -1);
	for (int i = 1; i <= 100; i++) {
		weft_dur_add(&d, i * 10); // 10..1000
	}
	cr_expect_eq(d.count, 100);
	cr_expect_eq(weft_dur_mean(&d), 505);
	// The window holds the last 64: 370..1000.
	cr_expect_eq(d.n, WEFT_DUR_WINDOW);
	cr_expect_eq(weft_dur_quantile(&d, 0.0), 370);
	cr_expect_eq(weft_dur_quantile(&d, 0.5), 680); // rank 32 of 64
	cr_expect_eq(weft_dur_quantile(&d, 0.95), 970); // rank 61
	cr_expect_eq(weft_dur_quantile(&d, 1.0), 1000);
	weft_dur_add(&d, -5);
	cr_expect_eq(weft_dur_quantile(&d, 0.0), 0, "negative counts as 0");
}

Test(durations, samples_text_is_a_json_array)
{
	weft_dur d = { 0 };
	char    *text;

	text = weft_dur_samples_text(&d);
	cr_expect_str_eq(text, "[]");
	free(text);
	weft_dur_add(&d, 0);
	weft_dur_add(&d, INT32_MAX);
	weft_dur_add(&d, 12);
	text = weft_dur_samples_text(&d);
	cr_expect_str_eq(text, "[0,2147483647,12]");
	free(text);
}

Test(durations, store_round_trip)
{
	weft_dur d = { 0 }, back;
	char    *text;

	for (int i = 0; i < 70; i++) {
		weft_dur_add(&d, i);
	}
	text = weft_dur_samples_text(&d);
	// Oldest first, the 64 newest: 6 to 69, as compact JSON.
	cr_expect(strncmp(text, "[6,7,8,", 7) == 0 &&
	        strcmp(text + strlen(text) - 7, ",68,69]") == 0,
	    "%s", text);
	cr_assert(weft_dur_load(&back, d.count, d.sum_ms, text));
	cr_expect_eq(back.count, 70);
	cr_expect_eq(back.sum_ms, d.sum_ms);
	cr_expect_eq(back.n, WEFT_DUR_WINDOW);
	cr_expect_eq(weft_dur_quantile(&back, 0.5), weft_dur_quantile(&d, 0.5));
	cr_expect_eq(weft_dur_quantile(&back, 0.0), 6, "oldest first kept");
	// the next one replaces the oldest, as in the original
	weft_dur_add(&back, 1000);
	weft_dur_add(&d, 1000);
	cr_expect_eq(weft_dur_quantile(&back, 0.0), weft_dur_quantile(&d, 0.0));
	free(text);
	cr_expect_not(weft_dur_load(&back, 1, 1, "{\"a\": 1}"));
	cr_expect_not(weft_dur_load(&back, 1, 1, "[1, \"x\"]"));
	cr_expect_not(weft_dur_load(&back, 1, 1, "not json"));
	cr_expect_eq(back.n, 0, "zeroed on a refusal");
}

// A DAG: a -> b -> c (a long chain) beside s1, s2 (short) -> end.
static const char *path_def =
    "{\"name\": \"p\", \"steps\": ["
    "{\"id\": \"a\", \"type\": \"t\"},"
    "{\"id\": \"b\", \"type\": \"t\", \"depends_on\": [\"a\"]},"
    "{\"id\": \"c\", \"type\": \"t\", \"depends_on\": [\"b\"]},"
    "{\"id\": \"s1\", \"type\": \"t\"},"
    "{\"id\": \"s2\", \"type\": \"t\", \"depends_on\": [\"s1\"]},"
    "{\"id\": \"end\", \"type\": \"t\", \"depends_on\": [\"c\", \"s2\"]}]}";

struct path_row {
	const char *name;
	int64_t     cost[6]; // a b c s1 s2 end
	bool        ended[6];
	int64_t     want_total;
	bool        want_unknown;
	int64_t     want_a, want_s1;
};

static const struct path_row path_rows[] = {
	{ "nothing ended", { 200, 200, 200, 50, 50, 10 }, { 0 }, 610, false, 610,
	    110 },
	{ "the chain half done", { 200, 200, 200, 50, 50, 10 },
	    { true, true, false, false, false, false }, 210, false, 0, 110 },
	{ "a running step's remainder", { 20, 200, 200, 50, 50, 10 },
	    { false }, 430, false, 430, 110 },
	{ "unknown step on the path", { 200, -1, 200, 50, 50, 10 }, { false },
	    410, true, 410, 110 },
	{ "unknown step already ended", { 200, -1, 200, 50, 50, 10 },
	    { true, true, false, false, false, false }, 210, false, 0, 110 },
	{ "everything ended", { 1, 1, 1, 1, 1, 1 },
	    { true, true, true, true, true, true }, 0, false, 0, 0 },
};

Test(durations, critical_path_from_a_table)
{
	weft_def *def;
	char      err[256];

	cr_assert_eq(weft_def_parse(&def, path_def, strlen(path_def), err,
	                 sizeof(err)),
	    WEFT_OK, "%s", err);
	for (size_t t = 0; t < sizeof(path_rows) / sizeof(path_rows[0]); t++) {
		const struct path_row *r = &path_rows[t];
		int64_t                path[6];
		bool                   unknown;
		int64_t total = weft_dur_paths(def, r->cost, r->ended, path, &unknown);
		cr_expect_eq(total, r->want_total, "%s: total %ld", r->name,
		    (long) total);
		cr_expect_eq(unknown, r->want_unknown, "%s: unknown", r->name);
		cr_expect_eq(path[0], r->want_a, "%s: a %ld", r->name,
		    (long) path[0]);
		cr_expect_eq(path[3], r->want_s1, "%s: s1 %ld", r->name,
		    (long) path[3]);
	}
	weft_def_free(def);
}

// ---- waiting_for: the step type limit ----

Test(waiting, type_limit_is_a_reason)
{
	weft_wait_facts f = { .state = WEFT_STEP_READY, .type = "shell",
		.type_known = true, .advertised = true, .free_slots = 3,
		.workers = 2, .type_limit = 2, .type_running = 2 };
	json_t *o = weft_waiting_for(&f);

	cr_assert_not_null(o);
	cr_expect_str_eq(json_string_value(json_object_get(o, "reason")),
	    "type_limit");
	cr_expect(strstr(json_string_value(json_object_get(o, "message")),
	              "--limit shell=2") != NULL);
	json_decref(o);
	f.type_running = 1; // room again: the worker's view decides
	o              = weft_waiting_for(&f);
	cr_expect_str_eq(json_string_value(json_object_get(o, "reason")),
	    "dispatching");
	json_decref(o);
}
