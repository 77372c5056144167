// security_test: attacks on a running cluster (real coordinator and worker
// processes, raw SP/protobuf clients): forged results with a wrong key and
// with the right key from a node that does not hold the attempt, a
// replayed result batch, assignments and aborts sent straight to a worker,
// a second worker started under a taken name, and a worker without the
// cookie. Every one must change nothing.
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>

#include "clock.h"
#include "cluster.h"
#include "harness.h"
#include "wire.h"

static weft_cluster c;

static void
up(void)
{
	weft_cluster_start(&c, 1, 200);
}

static void
down(void)
{
	weft_cluster_stop(&c);
}

TestSuite(security, .init = up, .fini = down, .timeout = 180);

// exchange sends env packed by w on a fresh req socket to url and returns
// the reply (NULL when none came within ms).
static nng_msg *
exchange(const char *url, weft_wire *w, Weft__Envelope *env, int ms)
{
	nng_socket s;
	nng_msg   *msg, *reply = NULL;

	cr_assert_eq(weft_wire_pack(w, env, NULL, &msg), WEFT_OK);
	cr_assert_eq(nng_req0_open(&s), 0);
	nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, ms);
	cr_assert_eq(nng_dial(s, url, NULL, 0), 0);
	if (nng_sendmsg(s, msg, 0) != 0) {
		nng_msg_free(msg);
	} else if (nng_recvmsg(s, &reply, 0) != 0) {
		reply = NULL;
	}
	nng_close(s);
	return (reply);
}

// result_env fills env with one successful result of run/step/attempt 1
// whose output says who forged it.
static void
result_env(Weft__Envelope *env, Weft__ResultBatch *rb, Weft__StepResult *sr,
    Weft__StepResult **srs, const char *run, const char *step)
{
	weft__envelope__init(env);
	weft__result_batch__init(rb);
	weft__step_result__init(sr);
	sr->run_id      = (char *) run;
	sr->step_id     = (char *) step;
	sr->attempt     = 1;
	sr->ok          = true;
	sr->output_json = "{\"forged\":true}";
	srs[0]          = sr;
	rb->n_results   = 1;
	rb->results     = srs;
	env->body_case  = WEFT__ENVELOPE__BODY_RESULTS;
	env->results    = rb;
	env->recipient  = "coordinator";
}

// start_slow starts a run whose one step sleeps ms on w0 and waits until
// it runs there; returns the run id (static storage).
static const char *
start_slow(int ms)
{
	static char id[64];
	char        def[256], *out;

	snprintf(def, sizeof(def),
	    "{\"name\":\"slow\",\"steps\":[{\"id\":\"s\",\"type\":\"sleep\","
	    "\"with\":{\"ms\":%d}}]}",
	    ms);
	cr_assert_eq(weft_cluster_cli(&c, &out, "run '%s'",
	                 weft_cluster_write(&c, "slow.json", def)),
	    0, "%s", out);
	out[strcspn(out, "\n")] = '\0';
	snprintf(id, sizeof(id), "%s", out);
	free(out);
	int64_t deadline = weft_clock_mono_ms() + weft_h_timeout_ms(15000);
	while (weft_cluster_count_events(&c, id, "step_started") == 0) {
		cr_assert(weft_clock_mono_ms() < deadline, "step never started");
		weft_clock_sleep_ms(50);
	}
	return (id);
}

// worker_url returns w0's dispatch address (static storage).
static const char *
worker_url(void)
{
	static char url[256];
	json_t     *ws = weft_cluster_cli_json(&c, "workers");
	size_t      k;
	json_t     *w;

	url[0] = '\0';
	json_array_foreach (ws, k, w) {
		if (strcmp(json_string_value(json_object_get(w, "name")), "w0") ==
		    0) {
			snprintf(url, sizeof(url), "%s",
			    json_string_value(json_object_get(w, "address")));
		}
	}
	json_decref(ws);
	cr_assert(url[0] != '\0', "w0 has no address");
	return (url);
}

// step_output returns the run's output of step s as compact JSON (caller
// frees), after the run ended.
static char *
run_output(const char *id)
{
	json_t *run = weft_cluster_run_end(&c, id, 30000);
	char   *out;

	cr_assert_str_eq(json_string_value(json_object_get(run, "status")),
	    "succeeded");
	out = json_dumps(json_object_get(run, "output"), JSON_COMPACT);
	json_decref(run);
	return (out);
}

Test(security, forged_results_change_nothing)
{
	const char       *id = start_slow(1500);
	Weft__Envelope    env;
	Weft__ResultBatch rb;
	Weft__StepResult  sr, *srs[1];
	weft_wire         nokey, rogue, twin;
	nng_msg          *r;

	result_env(&env, &rb, &sr, srs, id, "s");
	// 1. No cookie, claiming to be w0: not even acked.
	weft_wire_init(&nokey, "w0");
	r = exchange(c.results, &nokey, &env, 1000);
	cr_expect_null(r, "a result without the cookie was acked");
	nng_msg_free(r);
	// 2. The cookie, but a node that never joined.
	weft_cluster_wire(&c, &rogue, "rogue");
	r = exchange(c.results, &rogue, &env, 3000);
	cr_expect_not_null(r, "an authentic batch is acked (and ignored)");
	nng_msg_free(r);
	// 3. The cookie and w0's name, but not w0's process.
	weft_cluster_wire(&c, &twin, "w0");
	r = exchange(c.results, &twin, &env, 3000);
	cr_expect_not_null(r);
	nng_msg_free(r);
	char *out = run_output(id);
	cr_expect(strstr(out, "forged") == NULL, "forged output won: %s", out);
	free(out);
	cr_expect_eq(weft_cluster_count_events(&c, id, "step_succeeded"), 1);
	cr_expect_eq(weft_cluster_count_events(&c, id, "result_ignored"), 2,
	    "the two authentic forgeries are recorded as ignored");
	weft_wire_fini(&nokey);
	weft_wire_fini(&rogue);
	weft_wire_fini(&twin);
}

Test(security, replayed_result_batch_is_dropped)
{
	Weft__Envelope    env;
	Weft__ResultBatch rb;
	Weft__StepResult  sr, *srs[1];
	weft_wire         member;
	nng_msg          *msg, *r;
	nng_socket        s;

	result_env(&env, &rb, &sr, srs, "01NOSUCHRUN000000000000000", "x");
	weft_cluster_wire(&c, &member, "member");
	cr_assert_eq(weft_wire_pack(&member, &env, NULL, &msg), WEFT_OK);
	for (int i = 0; i < 2; i++) {
		nng_msg *copy;
		cr_assert_eq(nng_msg_dup(&copy, msg), 0);
		cr_assert_eq(nng_req0_open(&s), 0);
		nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, 2000);
		cr_assert_eq(nng_dial(s, c.results, NULL, 0), 0);
		cr_assert_eq(nng_sendmsg(s, copy, 0), 0);
		if (nng_recvmsg(s, &r, 0) != 0) {
			r = NULL;
		}
		nng_close(s);
		if (i == 0) {
			cr_expect_not_null(r, "the first copy is taken");
		} else {
			cr_expect_null(r, "the replayed copy was taken");
		}
		nng_msg_free(r);
	}
	nng_msg_free(msg);
	char *metrics;
	cr_assert_eq(weft_h_run_fmt(&metrics, "curl -sf http://%s/metrics", c.http),
	    0);
	cr_expect(strstr(metrics, "weft_wire_dropped_total{reason=\"replay\"} 1") !=
	        NULL,
	    "%s", metrics);
	free(metrics);
	weft_wire_fini(&member);
}

Test(security, worker_takes_work_only_from_its_coordinator)
{
	const char        *id = start_slow(1500);
	const char        *url = worker_url();
	Weft__Envelope     env = WEFT__ENVELOPE__INIT;
	Weft__AssignBatch  b   = WEFT__ASSIGN_BATCH__INIT;
	Weft__Assignment   a   = WEFT__ASSIGNMENT__INIT;
	Weft__Abort        ab  = WEFT__ABORT__INIT;
	Weft__Assignment  *as[1] = { &a };
	Weft__Abort       *abs[1] = { &ab };
	weft_wire          member, twin;
	nng_msg           *r;
	char               marker[700];

	// An exec of an allowed program, outside any run: it must not run.
	snprintf(marker, sizeof(marker), "%s/pwned", c.dir);
	char script[800];
	snprintf(script, sizeof(script), "#!/bin/sh\ntouch '%s'\n", marker);
	const char *path = weft_cluster_write(&c, "bin/touch.sh", script);
	chmod(path, 0755);
	char input[1024];
	snprintf(input, sizeof(input), "{\"with\":{\"cmd\":[\"%s\"]}}", path);
	a.run_id      = "01FAKE0000000000000000000";
	a.step_id     = "x";
	a.attempt     = 1;
	a.type        = "exec";
	a.input_json  = input;
	b.n_items     = 1;
	b.items       = as;
	ab.run_id     = (char *) id;
	ab.step_id    = "s";
	ab.attempt    = 1;
	b.n_aborts    = 1;
	b.aborts      = abs;
	env.body_case = WEFT__ENVELOPE__BODY_ASSIGN;
	env.assign    = &b;
	env.recipient = "w0";
	// With the cookie, as another node, and under the coordinator's own
	// name from another process: no answer, nothing run, nothing aborted.
	weft_cluster_wire(&c, &member, "member");
	weft_cluster_wire(&c, &twin, "coordinator");
	r = exchange(url, &member, &env, 1000);
	cr_expect_null(r, "the worker answered another node");
	nng_msg_free(r);
	r = exchange(url, &twin, &env, 1000);
	cr_expect_null(r, "the worker answered an impostor");
	nng_msg_free(r);
	char *out = run_output(id);
	free(out);
	cr_expect_eq(weft_cluster_count_events(&c, id, "step_failed"), 0,
	    "the abort was obeyed");
	weft_clock_sleep_ms(500);
	cr_expect_neq(access(marker, F_OK), 0, "the forged assignment ran");
	weft_wire_fini(&member);
	weft_wire_fini(&twin);
}

Test(security, second_worker_under_a_taken_name_is_refused)
{
	char  log[700];
	// As if on another machine: its own spool (on this one, the spool's
	// lock would refuse it before it reached the coordinator).
	char *argv[] = { "weft-worker", "--join", c.cluster, "--name", "w0",
		"--slots", "8", "--cookie-file", c.cookie, "--no-spool", NULL };
	pid_t p;
	int   st;

	snprintf(log, sizeof(log), "%s/w0-twin.log", c.dir);
	p = weft_h_spawn(argv, log);
	int64_t deadline = weft_clock_mono_ms() + weft_h_timeout_ms(15000);
	while (waitpid(p, &st, WNOHANG) == 0) {
		if (weft_clock_mono_ms() > deadline) {
			weft_cluster_dump_logs(&c);
			cr_assert_fail("the second w0 is still running");
		}
		weft_clock_sleep_ms(50);
	}
	cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 3, "status %d", st);
	char *text;
	cr_assert_eq(weft_h_run_fmt(&text, "cat '%s'", log), 0);
	cr_expect(strstr(text, "NODE-CONFLICT") != NULL, "%s", text);
	cr_expect(strstr(text, "held by a live node") != NULL, "%s", text);
	free(text);
	cr_expect_eq(weft_cluster_count_events(&c, NULL, "node_conflict"), 1);
	json_t *ev = weft_cluster_cli_json(&c, "events --type node_conflict");
	json_t *data = json_object_get(ev, "data");
	cr_expect_not_null(json_object_get(data, "address"), "no holder");
	cr_expect_not_null(json_object_get(data, "refused_address"),
	    "no newcomer");
	json_decref(ev);
	// The real w0 still works, and each step ran once.
	json_t *run = weft_cluster_cli_json(&c, "run '%s' --wait",
	    WEFT_SRC_DIR "/examples/diamond.json");
	cr_expect_str_eq(json_string_value(json_object_get(run, "status")),
	    "succeeded");
	const char *id = json_string_value(json_object_get(run, "id"));
	size_t      nsteps = json_array_size(json_object_get(run, "steps"));
	cr_expect_eq(weft_cluster_count_events(&c, id, "step_dispatched"),
	    nsteps, "a step was dispatched twice");
	cr_expect_eq(weft_cluster_count_events(&c, id, "step_succeeded"),
	    nsteps, "a step ran twice");
	json_decref(run);
	cr_expect_eq(weft_cluster_count_events(&c, NULL, "worker_lost"), 0);
}

Test(security, worker_without_the_cookie_joins_nothing)
{
	char  log[700], other[700];
	char *argv[] = { "weft-worker", "--join", c.cluster, "--name", "stranger",
		"--cookie-file", other, NULL };
	pid_t p;

	// Its own cookie (made on loopback, as any lone node would).
	snprintf(other, sizeof(other), "%s/stranger-cookie", c.dir);
	snprintf(log, sizeof(log), "%s/stranger.log", c.dir);
	p = weft_h_spawn(argv, log);
	int64_t deadline = weft_clock_mono_ms() + weft_h_timeout_ms(15000);
	char   *text     = NULL;
	for (;;) {
		free(text);
		cr_assert_eq(weft_h_run_fmt(&text, "cat '%s'", log), 0);
		if (strstr(text, "reason=EAUTH") != NULL) {
			break;
		}
		cr_assert(weft_clock_mono_ms() < deadline, "%s", text);
		weft_clock_sleep_ms(100);
	}
	cr_expect(strstr(text, "COORD-FOUND") == NULL, "%s", text);
	free(text);
	weft_clock_sleep_ms(600); // three more survey rounds
	json_t *ws = weft_cluster_cli_json(&c, "workers");
	char   *s  = json_dumps(ws, JSON_COMPACT);
	cr_expect(strstr(s, "stranger") == NULL, "admitted: %s", s);
	free(s);
	json_decref(ws);
	weft_h_kill(p, SIGTERM);
}

// The events pub socket cannot tell subscribers apart: off loopback it is
// refused unless it is mutual TLS; --insecure starts anyway. (Refused
// before any socket is bound: nothing listens off loopback here.)
Test(security, events_off_loopback_needs_mutual_tls)
{
	char  log[700], db[700];
	char *argv[] = { "weft-coordinator", "--db", db, "--control",
		"tcp://127.0.0.1:0", "--cluster", "tcp://127.0.0.1:0", "--results",
		"tcp://127.0.0.1:0", "--events", "tcp://0.0.0.0:0", "--http", "",
		"--cookie-file", c.cookie, NULL };
	pid_t p;
	int   st;

	snprintf(db, sizeof(db), "sqlite:%s/events-check.db", c.dir);
	snprintf(log, sizeof(log), "%s/events-check.log", c.dir);
	p = weft_h_spawn(argv, log);
	int64_t deadline = weft_clock_mono_ms() + weft_h_timeout_ms(10000);
	while (waitpid(p, &st, WNOHANG) == 0) {
		cr_assert(weft_clock_mono_ms() < deadline, "it started");
		weft_clock_sleep_ms(50);
	}
	cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 1, "status %d", st);
	char *text;
	cr_assert_eq(weft_h_run_fmt(&text, "cat '%s'", log), 0);
	cr_expect(strstr(text, "--events tcp://0.0.0.0:0 is off loopback") !=
	        NULL,
	    "%s", text);
	cr_expect(strstr(text, "WebSocket stream") != NULL, "%s", text);
	free(text);
}
