// worker_steps_test: the built-in step types (noop, echo, sleep, fail,
// exec) and custom registration, run through weft_worker_run_local; exec
// progress lines (WEFT_PROGRESS_FD) and their parser.
// realpath and nftw are XSI, beyond _POSIX_C_SOURCE.
#define _XOPEN_SOURCE 700
#include <criterion/criterion.h>

#include <errno.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "alloc.h"
#include "clock.h"
#include "harness.h"
#include "worker.h"
#include "worker_impl.h" // the progress parser and an attempt's progress

// steps_open opens a worker (not started) with up to one allow directory.
static weft_worker *
steps_open(const char *allow)
{
	weft_worker_cfg cfg;
	const char     *dirs[1] = { allow };
	weft_worker    *w       = NULL;

	memset(&cfg, 0, sizeof(cfg));
	cfg.name         = "steps-test";
	cfg.exec_allow   = dirs;
	cfg.n_exec_allow = allow ? 1 : 0;
	cr_assert_eq(weft_worker_open(&w, &cfg), WEFT_OK);
	return (w);
}

// steps_run runs one attempt of type with input (JSON text).
static weft_result *
steps_run(weft_worker *w, const char *type, const char *input,
    uint32_t attempt, uint32_t timeout_ms)
{
	Weft__Assignment a = WEFT__ASSIGNMENT__INIT;
	weft_result     *r = NULL;

	a.run_id     = "r1";
	a.step_id    = "s1";
	a.attempt    = attempt;
	a.type       = (char *) type;
	a.input_json = (char *) input;
	a.timeout_ms = timeout_ms;
	cr_assert_eq(weft_worker_run_local(w, &a, &r), WEFT_OK);
	cr_assert_not_null(r);
	return (r);
}

// steps_json_eq asserts that JSON texts a and b are equal values.
static void
steps_json_eq(const char *a, const char *b)
{
	json_t *ja = json_loads(a, JSON_DECODE_ANY, NULL);
	json_t *jb = json_loads(b, JSON_DECODE_ANY, NULL);

	cr_assert(ja != NULL && jb != NULL, "bad JSON: %s / %s", a, b);
	cr_assert(json_equal(ja, jb), "%s != %s", a, b);
	json_decref(ja);
	json_decref(jb);
}

// steps_script writes an executable script into dir; returns its path.
static char *
steps_script(const char *dir, const char *name, const char *body)
{
	char  path[1024];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	cr_assert_not_null(f);
	fprintf(f, "#!/bin/sh\n%s\n", body);
	fclose(f);
	chmod(path, 0755);
	return (weft_xstrdup(path));
}

// steps_exec_input makes {"with": {"cmd": [cmd]}} plus an extra field.
static char *
steps_exec_input(const char *cmd)
{
	json_t *doc = json_pack("{s{s[s]}si}", "with", "cmd", cmd, "n", 7);
	char   *s   = json_dumps(doc, JSON_COMPACT);

	json_decref(doc);
	return (s);
}

Test(worker_steps, noop_outputs_null, .timeout = 30)
{
	weft_worker *w = steps_open(NULL);
	weft_result *r = steps_run(w, "noop", "{\"x\":1}", 1, 0);

	cr_assert(r->ok);
	cr_assert_str_eq(r->output_json, "null");
	weft_result_free(r);
	weft_worker_close(w);
}

// noop's input is not decoded (a join's can be 450 KB): not JSON, noop
// still succeeds, where a step that reads its input fails naming it.
Test(worker_steps, noop_does_not_decode_its_input, .timeout = 30)
{
	weft_worker *w = steps_open(NULL);
	weft_result *r = steps_run(w, "noop", "{\"x\":", 1, 0);

	cr_assert(r->ok, "%s", r->error);
	cr_assert_str_eq(r->output_json, "null");
	weft_result_free(r);
	r = steps_run(w, "pass", "{\"x\":", 1, 0);
	cr_assert_not(r->ok);
	cr_assert(strstr(r->error, "input_json is not JSON") != NULL, "%s",
	    r->error);
	weft_result_free(r);
	weft_worker_close(w);
}

Test(worker_steps, echo_returns_whole_input, .timeout = 30)
{
	const char  *in = "{\"input\":{\"a\":[1,2]},\"with\":{\"k\":\"v\"}}";
	weft_worker *w  = steps_open(NULL);
	weft_result *r  = steps_run(w, "echo", in, 1, 0);

	cr_assert(r->ok);
	steps_json_eq(r->output_json, in);
	cr_assert_str_eq(r->run_id, "r1");
	cr_assert_str_eq(r->step_id, "s1");
	cr_assert(r->finished_ms >= r->started_ms && r->started_ms > 0);
	weft_result_free(r);
	weft_worker_close(w);
}

// pass outputs its `with` only: no input, params or dependencies ride
// along; without a `with` its output is null.
Test(worker_steps, pass_returns_its_with_only, .timeout = 30)
{
	const char  *in = "{\"input\":{\"a\":[1,2]},\"steps\":{\"d\":{"
	                  "\"output\":{\"big\":1}}},\"with\":{\"k\":\"v\"}}";
	weft_worker *w  = steps_open(NULL);
	weft_result *r  = steps_run(w, "pass", in, 1, 0);

	cr_assert(r->ok);
	steps_json_eq(r->output_json, "{\"k\":\"v\"}");
	weft_result_free(r);
	r = steps_run(w, "pass", "{\"input\":{}}", 1, 0);
	cr_assert(r->ok);
	cr_assert_str_eq(r->output_json, "null");
	weft_result_free(r);
	weft_worker_close(w);
}

Test(worker_steps, bad_input_json_fails, .timeout = 30)
{
	weft_worker *w = steps_open(NULL);
	weft_result *r = steps_run(w, "echo", "{nope", 1, 0);

	cr_assert(!r->ok);
	cr_assert(strstr(r->error, "input_json is not JSON") != NULL, "%s",
	    r->error);
	weft_result_free(r);
	weft_worker_close(w);
}

Test(worker_steps, sleep_sleeps_and_reports, .timeout = 30)
{
	weft_worker *w  = steps_open(NULL);
	int64_t      t0 = weft_clock_mono_ms();
	weft_result *r  = steps_run(w, "sleep", "{\"with\":{\"ms\":60}}", 1, 0);

	cr_assert(r->ok, "%s", r->error);
	cr_assert(weft_clock_mono_ms() - t0 >= 60);
	steps_json_eq(r->output_json, "{\"slept_ms\":60}");
	weft_result_free(r);
	weft_worker_close(w);
}

Test(worker_steps, sleep_rejects_missing_or_negative_ms, .timeout = 30)
{
	weft_worker *w = steps_open(NULL);
	const char  *bad[] = { "{}", "{\"with\":{\"ms\":-5}}",
                "{\"with\":{\"ms\":\"x\"}}" };

	for (size_t i = 0; i < 3; i++) {
		weft_result *r = steps_run(w, "sleep", bad[i], 1, 0);
		cr_assert(!r->ok, "%s", bad[i]);
		cr_assert(strstr(r->error, "sleep: with.ms") != NULL, "%s",
		    r->error);
		weft_result_free(r);
	}
	weft_worker_close(w);
}

Test(worker_steps, sleep_respects_timeout, .timeout = 30)
{
	weft_worker *w  = steps_open(NULL);
	int64_t      t0 = weft_clock_mono_ms();
	weft_result *r =
	    steps_run(w, "sleep", "{\"with\":{\"ms\":20000}}", 1, 80);

	cr_assert(!r->ok);
	cr_assert_str_eq(r->error, "sleep: timed out after 80 ms");
	cr_assert(weft_clock_mono_ms() - t0 < 10000);
	weft_result_free(r);
	weft_worker_close(w);
}

Test(worker_steps, fail_fails_first_times_attempts, .timeout = 30)
{
	weft_worker *w = steps_open(NULL);
	weft_result *r;

	for (uint32_t a = 1; a <= 2; a++) {
		char want[64];
		r = steps_run(w, "fail", "{\"with\":{\"times\":2}}", a, 0);
		snprintf(want, sizeof(want),
		    "fail: attempt %u of 2 set to fail", a);
		cr_assert(!r->ok);
		cr_assert_str_eq(r->error, want);
		weft_result_free(r);
	}
	r = steps_run(w, "fail", "{\"with\":{\"times\":2}}", 3, 0);
	cr_assert(r->ok);
	steps_json_eq(r->output_json, "{\"attempt\":3}");
	weft_result_free(r);
	weft_worker_close(w);
}

Test(worker_steps, fail_defaults_to_one_time, .timeout = 30)
{
	weft_worker *w = steps_open(NULL);
	weft_result *r = steps_run(w, "fail", "{}", 1, 0);

	cr_assert(!r->ok);
	cr_assert_str_eq(r->error, "fail: attempt 1 of 1 set to fail");
	weft_result_free(r);
	r = steps_run(w, "fail", "{}", 2, 0);
	cr_assert(r->ok);
	steps_json_eq(r->output_json, "{\"attempt\":2}");
	weft_result_free(r);
	weft_worker_close(w);
}

Test(worker_steps, unknown_type_is_enoent, .timeout = 30)
{
	weft_worker     *w = steps_open(NULL);
	Weft__Assignment a = WEFT__ASSIGNMENT__INIT;
	weft_result     *r = NULL;

	a.type = "nope";
	cr_assert_eq(weft_worker_run_local(w, &a, &r), WEFT_ENOENT);
	cr_assert_null(r);
	weft_worker_close(w);
}

// steps_double is a custom step type: output = with.n * 2.
static int
steps_double(void *arg, const weft_step_ctx *ctx, json_t *input,
    json_t **output, char **error)
{
	json_t *n = json_object_get(json_object_get(input, "with"), "n");

	(void) ctx;
	cr_assert_str_eq((const char *) arg, "cookie");
	if (!json_is_integer(n)) {
		*error = weft_xstrdup("double: with.n must be an integer");
		return (1);
	}
	*output = json_integer(json_integer_value(n) * 2);
	return (0);
}

Test(worker_steps, custom_type_registers_and_runs, .timeout = 30)
{
	weft_worker *w = steps_open(NULL);
	weft_result *r;

	cr_assert_eq(weft_worker_register(w, "double", steps_double, "cookie"),
	    WEFT_OK);
	cr_assert_eq(weft_worker_register(w, "double", steps_double, NULL),
	    WEFT_EEXIST);
	cr_assert_eq(weft_worker_register(w, "echo", steps_double, NULL),
	    WEFT_EEXIST);
	r = steps_run(w, "double", "{\"with\":{\"n\":21}}", 1, 0);
	cr_assert(r->ok);
	cr_assert_str_eq(r->output_json, "42");
	weft_result_free(r);
	r = steps_run(w, "double", "{}", 1, 0);
	cr_assert(!r->ok);
	cr_assert_str_eq(r->error, "double: with.n must be an integer");
	weft_result_free(r);
	weft_worker_close(w);
}

Test(worker_steps, exec_runs_script_with_input_and_env, .timeout = 30)
{
	char        *dir = weft_h_tempdir("exec");
	char        *sh  = steps_script(dir, "ok.sh",
            "in=$(cat)\n"
            "printf '{\"in\":%s,\"key\":\"%s\",\"run\":\"%s\","
            "\"step\":\"%s\",\"attempt\":\"%s\",\"cwd\":\"%s\"}' \"$in\" "
            "\"$WEFT_IDEMPOTENCY_KEY\" \"$WEFT_RUN_ID\" \"$WEFT_STEP_ID\" "
            "\"$WEFT_ATTEMPT\" \"$(pwd -P)\"");
	char        *in   = steps_exec_input("./ok.sh");
	weft_worker *w    = steps_open(dir);
	weft_result *r    = steps_run(w, "exec", in, 3, 0);
	char        *real = realpath(dir, NULL);
	json_t      *out;
	char        *got;

	cr_assert(r->ok, "%s", r->error);
	cr_assert_eq(r->exit_code, 0);
	out = json_loads(r->output_json, 0, NULL);
	cr_assert_not_null(out, "%s", r->output_json);
	got = json_dumps(json_object_get(out, "in"), JSON_COMPACT);
	steps_json_eq(got, in);
	free(got);
	cr_assert_str_eq(json_string_value(json_object_get(out, "key")), "r1/s1",
	    "the idempotency key is the same for every attempt");
	cr_assert_str_eq(json_string_value(json_object_get(out, "run")), "r1");
	cr_assert_str_eq(json_string_value(json_object_get(out, "step")), "s1");
	cr_assert_str_eq(
	    json_string_value(json_object_get(out, "attempt")), "3");
	cr_assert_str_eq(json_string_value(json_object_get(out, "cwd")), real);
	json_decref(out);
	weft_result_free(r);
	// The absolute path works too.
	free(in);
	in = steps_exec_input(sh);
	r  = steps_run(w, "exec", in, 1, 0);
	cr_assert(r->ok, "%s", r->error);
	weft_result_free(r);
	weft_worker_close(w);
	free(real);
	free(in);
	free(sh);
	free(dir);
}

Test(worker_steps, exec_nonzero_exit_keeps_stderr_tail, .timeout = 30)
{
	char        *dir = weft_h_tempdir("exec");
	char        *sh  = steps_script(dir, "bad.sh",
            "i=0; while [ $i -lt 600 ]; do printf 'noise-%04d\\n' $i >&2; "
            "i=$((i+1)); done\necho LAST-LINE >&2\nexit 3");
	char        *in = steps_exec_input("bad.sh");
	weft_worker *w  = steps_open(dir);
	weft_result *r  = steps_run(w, "exec", in, 1, 0);
	size_t       n;

	cr_assert(!r->ok);
	cr_assert_str_eq(r->error, "exec: exit code 3");
	cr_assert_eq(r->exit_code, 3);
	cr_assert_not_null(r->stderr_tail);
	n = strlen(r->stderr_tail);
	cr_assert(n > 1000 && n <= 4096, "tail length %zu", n);
	cr_assert(strcmp(r->stderr_tail + n - 10, "LAST-LINE\n") == 0, "%s",
	    r->stderr_tail + n - 10);
	cr_assert(strstr(r->stderr_tail, "noise-0000") == NULL);
	weft_result_free(r);
	weft_worker_close(w);
	free(in);
	free(sh);
	free(dir);
}

Test(worker_steps, exec_outside_allow_dir_is_refused, .timeout = 30)
{
	char        *allowed = weft_h_tempdir("allow");
	char        *other   = weft_h_tempdir("other");
	char        *sh      = steps_script(other, "x.sh", "echo 1");
	char        *real    = realpath(sh, NULL);
	char        *in      = steps_exec_input(sh);
	weft_worker *w       = steps_open(allowed);
	weft_result *r       = steps_run(w, "exec", in, 1, 0);
	char         want[2048];

	// Refused by the command as given: the message names no path it
	// found (nothing about what exists outside the allow directory).
	snprintf(want, sizeof(want),
	    "exec: \"%s\" is not allowed (not an executable program under "
	    "an --exec-allow directory)",
	    sh);
	cr_assert(!r->ok);
	cr_assert_str_eq(r->error, want);
	weft_result_free(r);
	// A missing program gets the same answer as one that exists outside:
	// the error tells nothing of what is on this machine.
	char missing[1100], want2[2048];
	snprintf(missing, sizeof(missing), "%s/nothing-here.sh", other);
	free(in);
	in = steps_exec_input(missing);
	r  = steps_run(w, "exec", in, 1, 0);
	snprintf(want2, sizeof(want2),
	    "exec: \"%s\" is not allowed (not an executable program under "
	    "an --exec-allow directory)",
	    missing);
	cr_assert(!r->ok);
	cr_assert_str_eq(r->error, want2);
	weft_result_free(r);
	// A relative path climbing out of the allow directory: refused too.
	free(in);
	snprintf(want, sizeof(want), "../%s/x.sh", strrchr(other, '/') + 1);
	in = steps_exec_input(want);
	r  = steps_run(w, "exec", in, 1, 0);
	cr_assert(!r->ok);
	cr_assert(strstr(r->error, "is not allowed") != NULL, "%s", r->error);
	weft_result_free(r);
	weft_worker_close(w);
	free(in);
	free(real);
	free(sh);
	free(other);
	free(allowed);
}

// The allowlist is checked on the canonical path: every way out of the
// allow directory below (.., symlinked files and directories, a sibling
// whose name merely starts with the allow directory's) must be refused
// before anything runs. Layout, all inside one temp dir ROOT:
//
//	ROOT/allow/             the only --exec-allow directory
//	ROOT/allow/prog.sh      inside: creates ROOT/inside.mark
//	ROOT/allow/sub/         empty, to climb out of through sub/../..
//	ROOT/allow/link-in.sh   -> prog.sh (stays inside)
//	ROOT/allow/link-out.sh  -> ROOT/outside.sh (absolute target)
//	ROOT/allow/link-up.sh   -> ../outside.sh (relative target)
//	ROOT/allow/escape       -> ROOT/outdir (a directory)
//	ROOT/outside.sh         outside: creates ROOT/escaped.mark
//	ROOT/outdir/outside.sh  outside: creates ROOT/escaped.mark
//	ROOT/allow-evil/evil.sh outside, though its directory's name starts
//	                        with the allow directory's: same marker
typedef struct steps_jail {
	char *root;           // canonical temp dir holding everything (owned)
	char  allow[1024];    // ROOT/allow
	char  outside[1024];  // ROOT/outside.sh
	char  outdir[1024];   // ROOT/outdir, reached through allow/escape
	char  evil[1024];     // ROOT/allow-evil
	char  mark_in[1024];  // created by the program inside
	char  mark_out[1024]; // created by any program outside
} steps_jail;

static steps_jail jail; // one per test process (Criterion forks each test)

// steps_jail_path formats ROOT/rel into buf.
static void
steps_jail_path(char *buf, const char *rel)
{
	int n = snprintf(buf, 1024, "%s/%s", jail.root, rel);

	cr_assert(n > 0 && n < 1024, "path too long: %s/%s", jail.root, rel);
}

// steps_jail_marker writes a script into dir that creates mark.
static void
steps_jail_marker(const char *dir, const char *name, const char *mark)
{
	char body[1100];

	snprintf(body, sizeof(body), ": > '%s'", mark);
	free(steps_script(dir, name, body));
}

// steps_jail_link makes ROOT/rel a symlink to target.
static void
steps_jail_link(const char *target, const char *rel)
{
	char path[1024];

	steps_jail_path(path, rel);
	cr_assert_eq(symlink(target, path), 0, "symlink %s: %s", path,
	    strerror(errno));
}

// steps_jail_init builds the layout above.
static void
steps_jail_init(void)
{
	char *tmp = weft_h_tempdir("jail");
	char  sub[1024];

	memset(&jail, 0, sizeof(jail));
	jail.root = realpath(tmp, NULL);
	free(tmp);
	cr_assert_not_null(jail.root);
	steps_jail_path(jail.allow, "allow");
	steps_jail_path(jail.outside, "outside.sh");
	steps_jail_path(jail.outdir, "outdir");
	steps_jail_path(jail.evil, "allow-evil");
	steps_jail_path(jail.mark_in, "inside.mark");
	steps_jail_path(jail.mark_out, "escaped.mark");
	steps_jail_path(sub, "allow/sub");
	cr_assert_eq(mkdir(jail.allow, 0755), 0);
	cr_assert_eq(mkdir(sub, 0755), 0);
	cr_assert_eq(mkdir(jail.outdir, 0755), 0);
	cr_assert_eq(mkdir(jail.evil, 0755), 0);
	steps_jail_marker(jail.allow, "prog.sh", jail.mark_in);
	steps_jail_marker(jail.root, "outside.sh", jail.mark_out);
	steps_jail_marker(jail.outdir, "outside.sh", jail.mark_out);
	steps_jail_marker(jail.evil, "evil.sh", jail.mark_out);
	steps_jail_link("prog.sh", "allow/link-in.sh");
	steps_jail_link(jail.outside, "allow/link-out.sh");
	steps_jail_link("../outside.sh", "allow/link-up.sh");
	steps_jail_link(jail.outdir, "allow/escape");
}

// steps_jail_rm_cb removes one entry; FTW_PHYS keeps it off symlinks.
static int
steps_jail_rm_cb(const char *path, const struct stat *st, int flag,
    struct FTW *ftw)
{
	(void) st;
	(void) flag;
	(void) ftw;
	return (remove(path));
}

// steps_jail_fini removes ROOT and everything in it, failed test or not.
static void
steps_jail_fini(void)
{
	if (jail.root != NULL) {
		nftw(jail.root, steps_jail_rm_cb, 16, FTW_DEPTH | FTW_PHYS);
		free(jail.root);
		jail.root = NULL;
	}
}

// steps_jail_exists reports whether path exists (symlinks not followed).
static bool
steps_jail_exists(const char *path)
{
	struct stat st;

	return (lstat(path, &st) == 0);
}

// steps_jail_refuses runs cmd and asserts it was refused, naming want (the
// canonical program path), and that no outside program ran: the step has
// completed, and with it any child it would have started (the worker waits
// for its exit), so a marker would be there by now.
static void
steps_jail_refuses(weft_worker *w, const char *cmd, const char *want)
{
	char        *in = steps_exec_input(cmd);
	weft_result *r  = steps_run(w, "exec", in, 1, 5000);
	char         msg[2200];

	(void) want; // the canonical path: the answer must not name it
	snprintf(msg, sizeof(msg),
	    "exec: \"%s\" is not allowed (not an executable program under "
	    "an --exec-allow directory)",
	    cmd);
	cr_assert(!steps_jail_exists(jail.mark_out),
	    "cmd %s ran a program outside the allow directory", cmd);
	cr_assert(!r->ok, "cmd %s was allowed", cmd);
	cr_assert_str_eq(r->error, msg, "cmd %s", cmd);
	weft_result_free(r);
	free(in);
}

// steps_jail_runs runs cmd and asserts that it ran the program inside.
static void
steps_jail_runs(weft_worker *w, const char *cmd)
{
	char        *in = steps_exec_input(cmd);
	weft_result *r  = steps_run(w, "exec", in, 1, 5000);

	cr_assert(r->ok, "cmd %s: %s", cmd, r->error);
	cr_assert(steps_jail_exists(jail.mark_in), "cmd %s: no marker", cmd);
	cr_assert_eq(unlink(jail.mark_in), 0);
	cr_assert(!steps_jail_exists(jail.mark_out), "cmd %s", cmd);
	weft_result_free(r);
	free(in);
}

Test(worker_steps, exec_allow_inside_paths_run, .timeout = 30,
    .init = steps_jail_init, .fini = steps_jail_fini)
{
	weft_worker *w = steps_open(jail.allow);
	char         cmd[1100];

	steps_jail_runs(w, "prog.sh");
	steps_jail_runs(w, "./prog.sh");
	steps_jail_runs(w, "sub/../prog.sh");
	steps_jail_runs(w, "link-in.sh");
	snprintf(cmd, sizeof(cmd), "%s/prog.sh", jail.allow);
	steps_jail_runs(w, cmd);
	snprintf(cmd, sizeof(cmd), "%s/sub/../prog.sh", jail.allow);
	steps_jail_runs(w, cmd);
	snprintf(cmd, sizeof(cmd), "%s/link-in.sh", jail.allow);
	steps_jail_runs(w, cmd);
	weft_worker_close(w);
}

Test(worker_steps, exec_allow_absolute_dotdot_is_refused, .timeout = 30,
    .init = steps_jail_init, .fini = steps_jail_fini)
{
	weft_worker *w = steps_open(jail.allow);
	char         cmd[1100];

	snprintf(cmd, sizeof(cmd), "%s/../outside.sh", jail.allow);
	steps_jail_refuses(w, cmd, jail.outside);
	snprintf(cmd, sizeof(cmd), "%s/sub/../../outside.sh", jail.allow);
	steps_jail_refuses(w, cmd, jail.outside);
	weft_worker_close(w);
}

Test(worker_steps, exec_allow_relative_dotdot_is_refused, .timeout = 30,
    .init = steps_jail_init, .fini = steps_jail_fini)
{
	weft_worker *w = steps_open(jail.allow);

	steps_jail_refuses(w, "../outside.sh", jail.outside);
	steps_jail_refuses(w, "sub/../../outside.sh", jail.outside);
	weft_worker_close(w);
}

Test(worker_steps, exec_allow_symlink_out_is_refused, .timeout = 30,
    .init = steps_jail_init, .fini = steps_jail_fini)
{
	weft_worker *w = steps_open(jail.allow);
	char         cmd[1100];

	steps_jail_refuses(w, "link-out.sh", jail.outside);
	steps_jail_refuses(w, "link-up.sh", jail.outside);
	snprintf(cmd, sizeof(cmd), "%s/link-out.sh", jail.allow);
	steps_jail_refuses(w, cmd, jail.outside);
	snprintf(cmd, sizeof(cmd), "%s/link-up.sh", jail.allow);
	steps_jail_refuses(w, cmd, jail.outside);
	weft_worker_close(w);
}

Test(worker_steps, exec_allow_symlinked_dir_out_is_refused, .timeout = 30,
    .init = steps_jail_init, .fini = steps_jail_fini)
{
	weft_worker *w = steps_open(jail.allow);
	char         cmd[1100];
	char         want[1100];

	snprintf(want, sizeof(want), "%s/outside.sh", jail.outdir);
	steps_jail_refuses(w, "escape/outside.sh", want);
	snprintf(cmd, sizeof(cmd), "%s/escape/outside.sh", jail.allow);
	steps_jail_refuses(w, cmd, want);
	weft_worker_close(w);
}

Test(worker_steps, exec_allow_sibling_with_same_prefix_is_refused,
    .timeout = 30, .init = steps_jail_init, .fini = steps_jail_fini)
{
	weft_worker *w = steps_open(jail.allow);
	char         want[1100];

	// ROOT/allow-evil starts with the string ROOT/allow but is not in it.
	snprintf(want, sizeof(want), "%s/evil.sh", jail.evil);
	steps_jail_refuses(w, want, want);
	steps_jail_refuses(w, "../allow-evil/evil.sh", want);
	weft_worker_close(w);
}

// Without an --exec-allow directory exec could run nothing: the worker
// neither has nor advertises the type, so the coordinator never sends it
// exec work that could only fail.
Test(worker_steps, exec_without_allow_dir_is_not_offered, .timeout = 30)
{
	weft_worker     *w  = steps_open(NULL);
	char            *in = steps_exec_input("/bin/true");
	Weft__Assignment a  = WEFT__ASSIGNMENT__INIT;
	weft_result     *r  = NULL;

	a.run_id     = "r1";
	a.step_id    = "s1";
	a.attempt    = 1;
	a.type       = "exec";
	a.input_json = in;
	cr_expect_eq(weft_worker_run_local(w, &a, &r), WEFT_ENOENT);
	cr_expect_null(r);
	weft_worker_close(w);
	free(in);
}

Test(worker_steps, exec_bad_cmd_is_refused, .timeout = 30)
{
	char        *dir = weft_h_tempdir("exec");
	weft_worker *w   = steps_open(dir);
	const char  *bad[] = { "{}", "{\"with\":{\"cmd\":\"ls\"}}",
                "{\"with\":{\"cmd\":[]}}", "{\"with\":{\"cmd\":[1]}}",
                "{\"with\":{\"cmd\":[\"nope.sh\"]}}" };

	for (size_t i = 0; i < 5; i++) {
		weft_result *r = steps_run(w, "exec", bad[i], 1, 0);
		cr_assert(!r->ok, "%s", bad[i]);
		cr_assert(strncmp(r->error, "exec: ", 6) == 0, "%s", r->error);
		weft_result_free(r);
	}
	weft_worker_close(w);
	free(dir);
}

Test(worker_steps, exec_non_json_stdout_fails, .timeout = 30)
{
	char        *dir = weft_h_tempdir("exec");
	char        *sh  = steps_script(dir, "txt.sh", "echo hello world");
	char        *in  = steps_exec_input("txt.sh");
	weft_worker *w   = steps_open(dir);
	weft_result *r   = steps_run(w, "exec", in, 1, 0);

	cr_assert(!r->ok);
	cr_assert(strncmp(r->error, "exec: stdout is not JSON: ", 26) == 0,
	    "%s", r->error);
	weft_result_free(r);
	weft_worker_close(w);
	free(in);
	free(sh);
	free(dir);
}

Test(worker_steps, exec_empty_stdout_is_null, .timeout = 30)
{
	char        *dir = weft_h_tempdir("exec");
	char        *sh  = steps_script(dir, "quiet.sh", "exit 0");
	char        *in  = steps_exec_input("quiet.sh");
	weft_worker *w   = steps_open(dir);
	weft_result *r   = steps_run(w, "exec", in, 1, 0);

	cr_assert(r->ok, "%s", r->error);
	cr_assert_str_eq(r->output_json, "null");
	weft_result_free(r);
	weft_worker_close(w);
	free(in);
	free(sh);
	free(dir);
}

Test(worker_steps, exec_pumps_large_input_through, .timeout = 60)
{
	char        *dir = weft_h_tempdir("exec");
	char        *sh  = steps_script(dir, "cat.sh", "exec cat");
	json_t      *doc = json_pack("{s{s[s]}}", "with", "cmd", "cat.sh");
	json_t      *arr = json_array();
	weft_worker *w   = steps_open(dir);
	weft_result *r;
	char        *in;

	// Far bigger than a pipe buffer both ways: needs the poll loop.
	for (int i = 0; i < 40000; i++) {
		json_array_append_new(arr, json_string("0123456789"));
	}
	json_object_set_new(doc, "data", arr);
	in = json_dumps(doc, JSON_COMPACT);
	r  = steps_run(w, "exec", in, 1, 0);
	cr_assert(r->ok, "%s", r->error);
	steps_json_eq(r->output_json, in);
	weft_result_free(r);
	weft_worker_close(w);
	json_decref(doc);
	free(in);
	free(sh);
	free(dir);
}

Test(worker_steps, exec_stdout_over_cap_fails, .timeout = 60)
{
	char        *dir = weft_h_tempdir("exec");
	char        *sh  = steps_script(dir, "big.sh",
            "head -c 5000000 /dev/zero | tr '\\0' 'a'");
	char        *in  = steps_exec_input("big.sh");
	weft_worker *w   = steps_open(dir);
	weft_result *r   = steps_run(w, "exec", in, 1, 0);

	cr_assert(!r->ok);
	cr_assert(strstr(r->error, "stdout is larger than") != NULL, "%s",
	    r->error);
	weft_result_free(r);
	weft_worker_close(w);
	free(in);
	free(sh);
	free(dir);
}

Test(worker_steps, exec_killed_by_signal, .timeout = 30)
{
	char        *dir = weft_h_tempdir("exec");
	char        *sh  = steps_script(dir, "die.sh", "kill -9 $$");
	char        *in  = steps_exec_input("die.sh");
	weft_worker *w   = steps_open(dir);
	weft_result *r   = steps_run(w, "exec", in, 1, 0);

	cr_assert(!r->ok);
	cr_assert_str_eq(r->error, "exec: killed by signal 9");
	weft_result_free(r);
	weft_worker_close(w);
	free(in);
	free(sh);
	free(dir);
}

// steps_pid_gone reports whether pid has exited (gone, or a zombie whose
// parent has not reaped it yet).
static bool
steps_pid_gone(pid_t pid)
{
	char  path[64];
	char  buf[512];
	FILE *f;
	char *p;

	snprintf(path, sizeof(path), "/proc/%ld/stat", (long) pid);
	if ((f = fopen(path, "r")) == NULL) {
		return (true);
	}
	p = fgets(buf, sizeof(buf), f);
	fclose(f);
	if (p == NULL || (p = strrchr(buf, ')')) == NULL) {
		return (true);
	}
	return (p[2] == 'Z' || p[2] == 'X');
}

// steps_nap pauses briefly between checks of a polled condition.
static void
steps_nap(void)
{
	struct timespec ts = { 0, 5000000L };

	nanosleep(&ts, NULL);
}

// steps_read_pid reads a pid file, waiting for it to appear.
static pid_t
steps_read_pid(const char *path)
{
	int64_t end = weft_clock_mono_ms() + weft_h_timeout_ms(5000);
	long    pid = 0;
	FILE   *f;

	while (pid <= 0 && weft_clock_mono_ms() < end) {
		if ((f = fopen(path, "r")) != NULL) {
			if (fscanf(f, "%ld", &pid) != 1) {
				pid = 0;
			}
			fclose(f);
		}
		if (pid <= 0) {
			steps_nap();
		}
	}
	return ((pid_t) pid);
}

Test(worker_steps, exec_timeout_kills_process_group, .timeout = 60)
{
	char        *dir = weft_h_tempdir("exec");
	char        *sh  = steps_script(dir, "hang.sh",
            "sleep 300 &\necho $! > child.pid.tmp\n"
            "mv child.pid.tmp child.pid\nwait");
	char        *in = steps_exec_input("hang.sh");
	char         pidfile[1024];
	weft_worker *w  = steps_open(dir);
	int64_t      t0 = weft_clock_mono_ms();
	weft_result *r  = steps_run(w, "exec", in, 1, 400);
	pid_t        child;
	int64_t      end;

	cr_assert(!r->ok);
	cr_assert_str_eq(r->error, "exec: timed out after 400 ms");
	cr_assert(weft_clock_mono_ms() - t0 < weft_h_timeout_ms(10000));
	snprintf(pidfile, sizeof(pidfile), "%s/child.pid", dir);
	child = steps_read_pid(pidfile);
	cr_assert(child > 0, "no child pid");
	end = weft_clock_mono_ms() + weft_h_timeout_ms(5000);
	while (!steps_pid_gone(child) && weft_clock_mono_ms() < end) {
		steps_nap();
	}
	cr_assert(steps_pid_gone(child), "grandchild %ld survived",
	    (long) child);
	weft_result_free(r);
	weft_worker_close(w);
	free(in);
	free(sh);
	free(dir);
}

Test(worker_steps, exec_kills_stragglers_after_leader_exits, .timeout = 60)
{
	char        *dir = weft_h_tempdir("exec");
	char        *sh  = steps_script(dir, "bg.sh",
            "sleep 300 >/dev/null 2>&1 &\necho $! > child.pid.tmp\n"
            "mv child.pid.tmp child.pid\necho '{\"done\":true}'");
	char        *in = steps_exec_input("bg.sh");
	char         pidfile[1024];
	weft_worker *w  = steps_open(dir);
	weft_result *r  = steps_run(w, "exec", in, 1, 0);
	pid_t        child;
	int64_t      end;

	cr_assert(r->ok, "%s", r->error);
	steps_json_eq(r->output_json, "{\"done\":true}");
	snprintf(pidfile, sizeof(pidfile), "%s/child.pid", dir);
	child = steps_read_pid(pidfile);
	cr_assert(child > 0);
	end = weft_clock_mono_ms() + weft_h_timeout_ms(5000);
	while (!steps_pid_gone(child) && weft_clock_mono_ms() < end) {
		steps_nap();
	}
	cr_assert(steps_pid_gone(child));
	weft_result_free(r);
	weft_worker_close(w);
	free(in);
	free(sh);
	free(dir);
}

// ---- progress: the parser, then exec programs writing to WEFT_PROGRESS_FD ----

// One step of a progress table: bytes fed, then a take at `at` (monotonic
// ms), and what it must give.
struct progress_row {
	const char *name;
	const char *feed;  // bytes (NUL-free unless feedlen says otherwise)
	size_t      feedlen; // 0: strlen(feed)
	int64_t     at;
	bool        force;
	const char *want;  // JSON of the value taken, or NULL for none
	int         want_wait; // *wait_ms after the take (-1: nothing waits)
};

static const struct progress_row progress_rows[] = {
	{ "a JSON line is taken as JSON", "{\"done\": 1}\n", 0, 1000, false,
	    "{\"done\":1}", -1 },
	{ "a plain line is taken as a string", "copying files\n", 0, 2000,
	    false, "\"copying files\"", -1 },
	{ "half a line waits for its newline", "{\"done\":", 0, 3000, false,
	    NULL, -1 },
	{ "the rest of it completes it", " 2}\r\n", 0, 3100, false,
	    "{\"done\":2}", -1 },
	{ "of two lines at once only the newer counts", "one\ntwo\n", 0, 4000,
	    false, "\"two\"", -1 },
	{ "too soon after the last take: it waits", "three\n", 0, 4040,
	    false, NULL, 60 },
	{ "once its time has come it goes", "", 0, 4100, false, "\"three\"",
	    -1 },
	{ "not UTF-8: ignored", "bad \xff\xfe bytes\n", 0, 5000, false, NULL,
	    -1 },
	{ "a NUL inside: ignored", "nul\0inside\n", 11, 5100, false, NULL,
	    -1 },
	{ "an overlong encoding: ignored", "\xc0\xaf\n", 0, 5200, false, NULL,
	    -1 },
	{ "blank lines say nothing", "\n\r\n\n", 0, 5300, false, NULL, -1 },
	{ "at the end, force takes what waits", "last\n", 0, 5310, true,
	    "\"last\"", -1 },
	{ "multi-byte UTF-8 is fine", "caf\xc3\xa9 \xe2\x9c\x93\n", 0, 6000,
	    false, "\"caf\xc3\xa9 \xe2\x9c\x93\"", -1 },
};

Test(worker_steps, progress_lines_table, .timeout = 30)
{
	worker_progress *p = weft_xalloc(sizeof(*p));

	worker_progress_init(p);
	for (size_t k = 0; k < sizeof(progress_rows) / sizeof(progress_rows[0]);
	     k++) {
		const struct progress_row *row = &progress_rows[k];
		int                        wait = -2;
		worker_progress_feed(p, row->feed,
		    row->feedlen ? row->feedlen : strlen(row->feed));
		json_t *v = worker_progress_take(p, row->at, row->force, &wait);
		char   *got = v ? json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY)
		                : NULL;
		if (row->want == NULL) {
			cr_expect_null(got, "%s: took %s", row->name, got);
		} else {
			cr_expect(got != NULL && strcmp(got, row->want) == 0,
			    "%s: took %s, want %s", row->name, got ? got : "nothing",
			    row->want);
		}
		cr_expect_eq(wait, row->want_wait, "%s: wait %d", row->name, wait);
		free(got);
		json_decref(v);
	}
	cr_expect_eq(p->not_utf8, 3, "not UTF-8 lines counted");
	cr_expect_eq(p->too_long, 0);
	cr_expect_eq(p->too_fast, 1, "\"one\" was replaced before its take");
	free(p);
}

Test(worker_steps, progress_line_too_long_is_dropped_to_its_end, .timeout = 30)
{
	worker_progress *p    = weft_xalloc(sizeof(*p));
	size_t           n    = WORKER_PROGRESS_LINE_MAX + 10;
	char            *huge = weft_xalloc(n + 1);

	worker_progress_init(p);
	memset(huge, 'x', n);
	// Fed in pieces, as a pipe delivers it; then the next line is fine.
	worker_progress_feed(p, huge, 1000);
	worker_progress_feed(p, huge + 1000, n - 1000);
	worker_progress_feed(p, "\n42\n", 4);
	json_t *v = worker_progress_take(p, 1000, false, NULL);
	cr_assert_not_null(v);
	cr_expect(json_is_integer(v) && json_integer_value(v) == 42,
	    "the line after the long one is intact");
	cr_expect_eq(p->too_long, 1);
	// Exactly the limit is allowed.
	memset(huge, 'y', WORKER_PROGRESS_LINE_MAX);
	huge[WORKER_PROGRESS_LINE_MAX] = '\n';
	worker_progress_feed(p, huge, WORKER_PROGRESS_LINE_MAX + 1);
	json_decref(v);
	v = worker_progress_take(p, 5000, false, NULL);
	cr_assert_not_null(v);
	cr_expect_eq(json_string_length(v), WORKER_PROGRESS_LINE_MAX);
	cr_expect_eq(p->too_long, 1);
	json_decref(v);
	free(huge);
	free(p);
}

// What an exec attempt left as its progress, kept by progress_exec.
static char *progress_seen;

// progress_exec runs the exec step, then notes the attempt's progress.
static int
progress_exec(void *arg, const weft_step_ctx *ctx, json_t *input,
    json_t **output, char **error)
{
	int rc = weft_step_exec(arg, ctx, input, output, error);

	free(progress_seen);
	progress_seen = ctx->att->progress ? weft_xstrdup(ctx->att->progress)
	                                   : NULL;
	return (rc);
}

// progress_script runs body as an exec program through progress_exec and
// returns the progress it left (malloc'd, or NULL) and its result.
static char *
progress_script(const char *body, weft_result **res)
{
	char        *dir = weft_h_tempdir("progress");
	char        *sh  = steps_script(dir, "p.sh", body);
	char        *in  = steps_exec_input("./p.sh");
	weft_worker *w   = steps_open(dir);
	char        *seen;

	cr_assert_eq(weft_worker_register(w, "pexec", progress_exec, w),
	    WEFT_OK);
	*res = steps_run(w, "pexec", in, 1, 30000);
	seen = progress_seen;
	progress_seen = NULL;
	weft_worker_close(w);
	free(in);
	free(sh);
	free(dir);
	return (seen);
}

Test(worker_steps, exec_progress_fd_keeps_the_latest_good_line,
    .timeout = 60)
{
	weft_result *r;
	// Garbage after a good line: a line of bytes that are not UTF-8, and
	// one far over the limit. Neither replaces it.
	char *seen = progress_script(
	    "[ \"$WEFT_PROGRESS_FD\" = 3 ] || exit 9\n"
	    "echo starting >&3\n"
	    "printf '{\"done\": 1, \"of\": 3}\\n' >&3\n"
	    "printf 'bad \\377\\376 bytes\\n' >&3\n"
	    "head -c 100000 /dev/zero | tr '\\0' x >&3\n"
	    "echo >&3\n"
	    "echo '{}'",
	    &r);

	cr_assert(r->ok, "%s (exit %d)", r->error, r->exit_code);
	cr_assert_not_null(seen);
	steps_json_eq(seen, "{\"done\":1,\"of\":3}");
	free(seen);
	weft_result_free(r);
}

Test(worker_steps, exec_progress_flood_never_blocks_the_program,
    .timeout = 60)
{
	weft_result *r;
	// 10 MB of progress and 2,000 lines as fast as the shell writes:
	// the program is never held up, and the last line is what stays.
	char *seen = progress_script(
	    "head -c 10000000 /dev/zero | tr '\\0' y >&3\n"
	    "echo >&3\n"
	    "i=0; while [ $i -lt 2000 ]; do echo \"line $i\"; i=$((i+1)); "
	    "done >&3\n"
	    "echo 'almost there' >&3\n"
	    "echo '{\"ok\":true}'",
	    &r);

	cr_assert(r->ok, "%s (exit %d)", r->error, r->exit_code);
	steps_json_eq(r->output_json, "{\"ok\":true}");
	cr_assert_not_null(seen);
	cr_expect_str_eq(seen, "\"almost there\"");
	free(seen);
	weft_result_free(r);
}

Test(worker_steps, exec_without_progress_leaves_none, .timeout = 30)
{
	weft_result *r;
	char        *seen = progress_script("echo 1", &r);

	cr_assert(r->ok, "%s", r->error);
	cr_expect_null(seen, "no line written, no progress: %s", seen);
	free(seen);
	weft_result_free(r);
}

// beat_step heartbeats with a progress, a bad one, then none.
static int
beat_step(void *arg, const weft_step_ctx *ctx, json_t *input,
    json_t **output, char **error)
{
	(void) arg;
	(void) input;
	(void) error;
	cr_expect_eq(ctx->heartbeat_timeout_ms, 5000);
	cr_expect_eq(weft_attempt_heartbeat(ctx->att, "{\"pct\": 40}"), WEFT_OK);
	cr_expect_eq(weft_attempt_heartbeat(ctx->att, "{not json"), WEFT_EINVAL);
	char *big = weft_xalloc(WEFT_WIRE_PROGRESS_MAX + 8);
	memset(big, 'z', WEFT_WIRE_PROGRESS_MAX + 4);
	big[0]                          = '"';
	big[WEFT_WIRE_PROGRESS_MAX + 4] = '"';
	cr_expect_eq(weft_attempt_heartbeat(ctx->att, big), WEFT_EINVAL,
	    "over the limit");
	free(big);
	cr_expect_eq(weft_attempt_heartbeat(ctx->att, NULL), WEFT_OK);
	*output = json_string(ctx->att->progress);
	return (0);
}

Test(worker_steps, attempt_heartbeat_keeps_good_progress_only, .timeout = 30)
{
	weft_worker     *w = steps_open(NULL);
	Weft__Assignment a = WEFT__ASSIGNMENT__INIT;
	weft_result     *r = NULL;

	cr_assert_eq(weft_worker_register(w, "beat", beat_step, NULL), WEFT_OK);
	a.run_id               = "r1";
	a.step_id              = "s1";
	a.attempt              = 1;
	a.type                 = "beat";
	a.input_json           = "{}";
	a.heartbeat_timeout_ms = 5000;
	cr_assert_eq(weft_worker_run_local(w, &a, &r), WEFT_OK);
	cr_assert(r->ok, "%s", r->error);
	steps_json_eq(r->output_json, "\"{\\\"pct\\\":40}\"");
	weft_result_free(r);
	weft_worker_close(w);
}
