// memory_test: memory bounded by live work, with the real binaries: a
// coordinator with --def-cache 2 runs distinct inline definitions to the
// end and keeps at most two compiled (weft info and /metrics say so) with
// no run left in memory; malformed --def-cache is refused naming it.
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.h"
#include "harness.h"

static weft_cluster c;

static void
down(void)
{
	weft_cluster_stop(&c);
}

static json_t *
info_stats(void)
{
	json_t *info = weft_cluster_cli_json(&c, "info --json");
	json_t *st   = json_incref(json_object_get(info, "stats"));
	json_decref(info);
	cr_assert(json_is_object(st), "weft info --json without stats");
	return (st);
}

Test(memory, def_cache_bounds_inline_definitions, .fini = down,
    .timeout = 240)
{
	weft_cluster_opts o = { .nworkers = 1,
		.args = { "--def-cache", "2", NULL } };
	char              file[32], def[256];
	json_t           *st;
	char             *out = NULL;

	weft_cluster_start_opts(&c, &o);
	// Five distinct definitions, each sent inline with its run; the
	// third and fifth twice (the same body finds its entry).
	for (int k = 0; k < 7; k++) {
		int d = k < 5 ? k : (k == 5 ? 2 : 4);
		snprintf(file, sizeof(file), "d%d.json", d);
		snprintf(def, sizeof(def),
		    "{\"name\":\"mem%d\",\"steps\":[{\"id\":\"a\",\"type\":"
		    "\"echo\",\"with\":{\"k\":%d}}]}", d, d);
		json_t *run = weft_cluster_cli_json(&c, "run '%s' --wait",
		    weft_cluster_write(&c, file, def));
		cr_assert_str_eq(json_string_value(json_object_get(run, "status")),
		    "succeeded", "run %d", k);
		json_decref(run);
	}
	st = info_stats();
	cr_expect_leq(json_integer_value(json_object_get(st,
	                  "definitions_cached")), 2);
	cr_expect_eq(json_integer_value(json_object_get(st, "runs_in_memory")),
	    0, "an ended run stays in memory");
	json_decref(st);
	// Every body was registered once: mem2 and mem4 are still version 1.
	json_t *defs = weft_cluster_cli_json(&c, "definitions --json");
	cr_assert(json_is_array(defs), "weft definitions is not a list");
	cr_expect_eq(json_array_size(defs), 5);
	json_t *d;
	size_t  i;
	json_array_foreach (defs, i, d) {
		cr_expect_eq(json_integer_value(json_object_get(d, "version")), 1,
		    "%s", json_string_value(json_object_get(d, "name")));
	}
	json_decref(defs);
	cr_assert_eq(weft_h_run_fmt(&out, "curl -s http://%s/metrics", c.http),
	    0);
	cr_expect(out != NULL && strstr(out, "\nweft_definitions_cached ") &&
	        strstr(out, "\nweft_runs_in_memory 0\n"),
	    "%s", out);
	free(out);
}

Test(memory, malformed_def_cache_refused, .timeout = 120)
{
	static const char *const bad[] = { "0", "-1", "abc", "2x", "" };

	weft_cluster_expect_flag_refused("--def-cache", bad,
	    sizeof(bad) / sizeof(bad[0]), "--def-cache wants a number");
}
