// tls_test: encryption in transit with real processes on loopback. A
// cluster with every socket on tls+tcp:// and mutual TLS runs a workflow
// (the CLI too, over TLS); a worker whose certificate comes from another
// CA does not join, and says why; the dashboard and API answer on
// https:// only, the stream on wss://; bad certificate files stop every
// binary at startup with the file named. Certificates are made here with
// openssl (scripts/tls-certs.sh), never committed.
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nng/nng.h>
#include <nng/protocol/pubsub0/sub.h>

#include "clock.h"
#include "cluster.h"
#include "harness.h"
#include "tls.h"
#include "wire.h"

static weft_cluster c;

static void
up(void)
{
	weft_cluster_start_tls(&c, 2, 200);
}

static void
down(void)
{
	weft_cluster_stop(&c);
}

TestSuite(tls, .init = up, .fini = down, .timeout = 180);

// file_has reports whether the file at path contains s.
static bool
file_has(const char *path, const char *s)
{
	char  cmd[1200];
	char *out = NULL;
	bool  has;

	snprintf(cmd, sizeof(cmd), "cat '%s' 2>/dev/null", path);
	weft_h_run(cmd, &out);
	has = out != NULL && strstr(out, s) != NULL;
	free(out);
	return (has);
}

Test(tls, cluster_runs_a_workflow_over_mutual_tls)
{
	char  *out;
	json_t *ws, *w;
	size_t k;

	cr_assert(strncmp(c.control, "tls+tcp://127.0.0.1:", 20) == 0, "%s",
	    c.control);
	// Both workers joined, and announced dispatch addresses that keep
	// the tls+tcp scheme (the coordinator dials them back with TLS).
	ws = weft_cluster_cli_json(&c, "workers");
	cr_assert_eq(json_array_size(ws), 2);
	json_array_foreach (ws, k, w) {
		const char *a = json_string_value(json_object_get(w, "address"));
		cr_expect(a != NULL && strncmp(a, "tls+tcp://127.0.0.1:", 20) == 0,
		    "worker address %s", a ? a : "(none)");
	}
	json_decref(ws);
	// run --wait: the control request and the event stream, both TLS.
	int rv = weft_cluster_cli(&c, &out, "run '%s/examples/diamond.json' "
	                                    "--wait --json",
	    WEFT_SRC_DIR);
	if (rv != 0) {
		weft_cluster_dump_logs(&c);
	}
	cr_assert_eq(rv, 0, "run --wait exited %d: %s", rv, out);
	json_t *run = json_loads(out, 0, NULL);
	cr_assert_not_null(run, "not JSON: %s", out);
	free(out);
	cr_expect_str_eq(json_string_value(json_object_get(run, "status")),
	    "succeeded");
	json_decref(run);
	// The coordinator reports its addresses as bound, TLS scheme kept.
	cr_assert_eq(weft_cluster_cli(&c, &out, "info --json"), 0);
	cr_expect(strstr(out, "tls+tcp://127.0.0.1:") != NULL, "%s", out);
	free(out);
}

Test(tls, cli_without_certificate_is_refused_before_dialing)
{
	char cmd[1200], *out;

	snprintf(cmd, sizeof(cmd), "'%s' --coordinator %s info 2>&1",
	    weft_h_bin("weft"), c.control);
	cr_expect_eq(weft_h_run(cmd, &out), 2, "%s", out);
	cr_expect(strstr(out, "is a TLS address") != NULL, "%s", out);
	cr_expect(strstr(out, "--tls-cert") != NULL, "%s", out);
	free(out);
}

Test(tls, worker_from_another_ca_cannot_join)
{
	char  dir[700], cert[800], key[800], ca[800], log[800];
	char *args[] = { "weft-worker", "--join", c.cluster, "--listen",
		"tls+tcp://127.0.0.1:0", "--name", "rogue", "--tls-cert", cert,
		"--tls-key", key, "--tls-ca", ca, NULL };
	pid_t  rogue;
	char  *out;

	// A CA of its own, and a certificate from it: valid, but not ours.
	snprintf(dir, sizeof(dir), "%s/other-ca", c.dir);
	weft_cluster_tls_certs(dir, "rogue", "IP:127.0.0.1");
	snprintf(cert, sizeof(cert), "%s/rogue.crt", dir);
	snprintf(key, sizeof(key), "%s/rogue.key", dir);
	snprintf(ca, sizeof(ca), "%s/ca.crt", dir);
	snprintf(log, sizeof(log), "%s/rogue.log", c.dir);
	rogue = weft_h_spawn(args, log);
	// Its log says why it is not in: the handshake fails.
	int64_t deadline = weft_clock_mono_ms() + weft_h_timeout_ms(15000);
	while (!file_has(log, "TLS-HANDSHAKE")) {
		if (weft_clock_mono_ms() > deadline) {
			weft_cluster_dump_logs(&c);
			cr_assert_fail("the rogue worker never logged a failed "
			               "handshake");
		}
		cr_assert(weft_h_alive(rogue), "the rogue worker exited");
		weft_clock_sleep_ms(100);
	}
	// Several survey rounds later it is still not a member; the good
	// ones are.
	weft_clock_sleep_ms(1000);
	json_t *ws = weft_cluster_cli_json(&c, "workers");
	size_t  k;
	json_t *w;
	int     good = 0;
	json_array_foreach (ws, k, w) {
		const char *name = json_string_value(json_object_get(w, "name"));
		const char *st   = json_string_value(json_object_get(w, "state"));
		cr_expect(strcmp(name, "rogue") != 0, "the rogue worker joined");
		good += strcmp(st, "alive") == 0;
	}
	json_decref(ws);
	cr_expect_eq(good, 2, "the good workers are alive");
	cr_assert_eq(weft_cluster_cli(&c, &out, "events --type worker_joined"),
	    0);
	cr_expect(strstr(out, "rogue") == NULL, "rogue joined: %s", out);
	cr_expect(strstr(out, "\"w0\"") != NULL, "w0 did not join: %s", out);
	free(out);
	weft_h_kill(rogue, SIGTERM);
}

Test(tls, coordinator_logs_a_peer_without_a_certificate)
{
	char cmd[1500], log[700];
	const char *port = strrchr(c.control, ':') + 1;

	// openssl trusts our CA but has no certificate of its own to show.
	snprintf(cmd, sizeof(cmd),
	    "echo | timeout 10 openssl s_client -connect 127.0.0.1:%s "
	    "-CAfile '%s/ca.crt' >/dev/null 2>&1",
	    port, c.tls);
	weft_h_run(cmd, NULL);
	snprintf(log, sizeof(log), "%s/coordinator.log", c.dir);
	int64_t deadline = weft_clock_mono_ms() + weft_h_timeout_ms(10000);
	char    want[128];
	snprintf(want, sizeof(want), "event=TLS-HANDSHAKE side=listen url=%s", c.control);
	while (!file_has(log, want)) {
		cr_assert(weft_clock_mono_ms() < deadline,
		    "the coordinator did not log the refused handshake (%s)", want);
		weft_clock_sleep_ms(100);
	}
}

// curl_code runs curl with args on url; returns the HTTP status (0 when
// there was no HTTP answer) and *body.
static int
curl_code(const char *args, const char *url, char **body)
{
	char  cmd[2000], out[700], *code;
	int   st;

	snprintf(out, sizeof(out), "%s/curl.out", c.dir);
	cr_assert_lt(snprintf(cmd, sizeof(cmd),
	                 "rm -f '%s'; curl -s -m 10 -o '%s' -w '%%{http_code}' "
	                 "%s '%s'",
	                 out, out, args, url),
	    (int) sizeof(cmd), "curl command too long");
	weft_h_run(cmd, &code);
	st = atoi(code);
	free(code);
	snprintf(cmd, sizeof(cmd), "cat '%s' 2>/dev/null", out);
	weft_h_run(cmd, body);
	return (st);
}

Test(tls, dashboard_and_api_on_https_only)
{
	char  url[300], args[1000], *body;
	int   st;

	snprintf(args, sizeof(args), "--cacert '%s/ca.crt'", c.tls);
	snprintf(url, sizeof(url), "https://%s/health", c.http);
	st = curl_code(args, url, &body);
	cr_expect_eq(st, 200, "https /health: %d %s", st, body);
	cr_expect(strstr(body, "\"ok\":true") != NULL, "%s", body);
	free(body);
	snprintf(url, sizeof(url), "https://%s/", c.http);
	st = curl_code(args, url, &body);
	cr_expect_eq(st, 200, "https /: %d", st);
	free(body);
	// Without our CA curl does not trust the server.
	snprintf(url, sizeof(url), "https://%s/health", c.http);
	st = curl_code("", url, &body);
	cr_expect_eq(st, 0, "https without --cacert answered %d", st);
	free(body);
	// Plain http on the same port gets no HTTP answer.
	snprintf(url, sizeof(url), "http://%s/health", c.http);
	st = curl_code("", url, &body);
	cr_expect_eq(st, 0, "plain http answered %d: %s", st, body);
	free(body);
	// The dashboard's POSTs carry an https:// Origin: accepted.
	const char *def = weft_cluster_write(&c, "tls-origin.json",
	    "{\"name\":\"tlsorigin\",\"steps\":[{\"id\":\"a\",\"type\":\"noop\"}]}");
	snprintf(args, sizeof(args),
	    "--cacert '%s/ca.crt' -X POST -H 'Content-Type: application/json' "
	    "-H 'Origin: https://%s' --data-binary @'%s'",
	    c.tls, c.http, def);
	snprintf(url, sizeof(url), "https://%s/api/v1/definitions", c.http);
	st = curl_code(args, url, &body);
	cr_expect(st == 200 || st == 201, "same-origin https POST: %d %s", st,
	    body);
	free(body);
}

Test(tls, event_stream_on_wss)
{
	char       url[300], err[1024], cert[700], key[700], ca[700];
	weft_tls  *tls;
	nng_socket s;
	nng_dialer d;
	nng_msg   *msg = NULL;

	snprintf(cert, sizeof(cert), "%s/node.crt", c.tls);
	snprintf(key, sizeof(key), "%s/node.key", c.tls);
	snprintf(ca, sizeof(ca), "%s/ca.crt", c.tls);
	cr_assert_eq(weft_tls_open(&tls, cert, key, ca, err, sizeof(err)),
	    WEFT_OK, "%s", err);
	snprintf(url, sizeof(url), "wss://%s/api/v1/stream", c.http);
	cr_assert_eq(nng_sub0_open(&s), 0);
	cr_assert_eq(nng_socket_set(s, NNG_OPT_SUB_SUBSCRIBE, "", 0), 0);
	cr_assert_eq(nng_dialer_create(&d, s, url), 0);
	cr_assert_eq(weft_tls_dialer(tls, d, url, err, sizeof(err)), WEFT_OK,
	    "%s", err);
	cr_assert_eq(nng_dialer_start(d, 0), 0, "dial %s", url);
	nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, 1000);
	// Runs make events; the first published one arrives over wss.
	int64_t deadline = weft_clock_mono_ms() + weft_h_timeout_ms(15000);
	while (msg == NULL) {
		cr_assert(weft_clock_mono_ms() < deadline, "no event over %s", url);
		cr_assert_eq(weft_cluster_cli(&c, NULL,
		                 "run '%s/examples/diamond.json'", WEFT_SRC_DIR),
		    0);
		if (nng_recvmsg(s, &msg, 0) != 0) {
			msg = NULL;
		}
	}
	// An authentic frame of this cluster: verified with its cookie.
	Weft__Envelope *env = NULL;
	weft_wire       w;
	weft_cluster_wire(&c, &w, "tls-subscriber");
	cr_expect_eq(weft_wire_unpack(&w, msg, 1, &env), WEFT_OK);
	weft_wire_free(env);
	weft_wire_fini(&w);
	nng_msg_free(msg);
	nng_close(s);
	weft_tls_close(tls);
}

// ---- bad files: no cluster needed ----

// start_fails runs cmd (stderr into stdout) and checks that it exits with
// status want and says every string in says.
static void
start_fails(const char *what, const char *cmd, int want, const char *says1,
    const char *says2)
{
	char *out;
	int   rv = weft_h_run(cmd, &out);

	cr_expect_eq(rv, want, "%s: exit %d, want %d: %s", what, rv, want, out);
	cr_expect(strstr(out, says1) != NULL, "%s: does not say \"%s\": %s",
	    what, says1, out);
	cr_expect(says2 == NULL || strstr(out, says2) != NULL,
	    "%s: does not say \"%s\": %s", what, says2, out);
	free(out);
}

Test(tls_files, bad_files_stop_every_binary_at_startup_naming_the_file)
{
	char *d = weft_h_tempdir("tlsfiles");
	char  good[700], other[700], junk[700], empty[700], cmd[4000];
	char  coord[1500], worker[800], cli[800];

	snprintf(good, sizeof(good), "%s/good", d);
	snprintf(other, sizeof(other), "%s/other", d);
	weft_cluster_tls_certs(good, "node", "IP:127.0.0.1");
	weft_cluster_tls_certs(other, "node", "IP:127.0.0.1");
	snprintf(junk, sizeof(junk), "%s/junk.pem", d);
	snprintf(empty, sizeof(empty), "%s/empty.pem", d);
	snprintf(cmd, sizeof(cmd),
	    "printf 'not a certificate\\n' > '%s' && : > '%s'", junk, empty);
	cr_assert_eq(weft_h_run(cmd, NULL), 0);
	snprintf(coord, sizeof(coord),
	    "'%s' --db 'sqlite:%s/t.db' --control tls+tcp://127.0.0.1:0 "
	    "--cluster tls+tcp://127.0.0.1:0 --results tls+tcp://127.0.0.1:0 "
	    "--events tls+tcp://127.0.0.1:0 --http 127.0.0.1:0",
	    weft_h_bin("weft-coordinator"), d);
	snprintf(worker, sizeof(worker),
	    "'%s' --join tls+tcp://127.0.0.1:1 --listen tls+tcp://127.0.0.1:0",
	    weft_h_bin("weft-worker"));
	snprintf(cli, sizeof(cli), "'%s' --coordinator tls+tcp://127.0.0.1:1",
	    weft_h_bin("weft"));

	// A missing certificate file.
	snprintf(cmd, sizeof(cmd),
	    "%s --tls-cert '%s/missing.crt' --tls-key '%s/node.key' 2>&1", coord,
	    d, good);
	start_fails("coordinator, missing cert", cmd, 1, "missing.crt",
	    "No such file");
	// Garbage where the certificate should be.
	snprintf(cmd, sizeof(cmd),
	    "%s --tls-cert '%s' --tls-key '%s/node.key' 2>&1", coord, junk, good);
	start_fails("coordinator, garbage cert", cmd, 1, junk,
	    "no PEM certificate");
	// Garbage key, empty key, the key of another certificate.
	snprintf(cmd, sizeof(cmd),
	    "%s --tls-cert '%s/node.crt' --tls-key '%s' 2>&1", coord, good, junk);
	start_fails("coordinator, garbage key", cmd, 1, junk, "--tls-key");
	snprintf(cmd, sizeof(cmd),
	    "%s --tls-cert '%s/node.crt' --tls-key '%s' 2>&1", coord, good, empty);
	start_fails("coordinator, empty key", cmd, 1, empty, "empty");
	snprintf(cmd, sizeof(cmd),
	    "%s --tls-cert '%s/node.crt' --tls-key '%s/node.key' 2>&1", coord,
	    good, other);
	start_fails("coordinator, key of another cert", cmd, 1, "not the key",
	    NULL);
	// Garbage CA; a CA that did not sign the certificate.
	snprintf(cmd, sizeof(cmd),
	    "%s --tls-cert '%s/node.crt' --tls-key '%s/node.key' --tls-ca '%s' "
	    "2>&1",
	    coord, good, good, junk);
	start_fails("coordinator, garbage ca", cmd, 1, junk, "--tls-ca");
	snprintf(cmd, sizeof(cmd),
	    "%s --tls-cert '%s/node.crt' --tls-key '%s/node.key' --tls-ca "
	    "'%s/ca.crt' 2>&1",
	    coord, good, good, other);
	start_fails("coordinator, foreign ca", cmd, 1, "not accepted by --tls-ca",
	    other);
	// A certificate without its key; a CA alone.
	snprintf(cmd, sizeof(cmd), "%s --tls-cert '%s/node.crt' 2>&1", coord,
	    good);
	start_fails("coordinator, cert without key", cmd, 1, "--tls-key", NULL);
	snprintf(cmd, sizeof(cmd), "%s --tls-ca '%s/ca.crt' 2>&1", coord, good);
	start_fails("coordinator, ca alone", cmd, 1, "--tls-cert", NULL);
	// A tls+tcp:// address with no certificate at all.
	snprintf(cmd, sizeof(cmd), "%s 2>&1", coord);
	start_fails("coordinator, tls url without cert", cmd, 1,
	    "is a TLS address", "--tls-cert");

	// The worker: a missing CA, garbage cert, and no certificate.
	snprintf(cmd, sizeof(cmd),
	    "%s --tls-cert '%s/node.crt' --tls-key '%s/node.key' --tls-ca "
	    "'%s/missing-ca.crt' 2>&1",
	    worker, good, good, d);
	start_fails("worker, missing ca", cmd, 1, "missing-ca.crt",
	    "No such file");
	snprintf(cmd, sizeof(cmd),
	    "%s --tls-cert '%s' --tls-key '%s/node.key' 2>&1", worker, junk, good);
	start_fails("worker, garbage cert", cmd, 1, junk, "--tls-cert");
	snprintf(cmd, sizeof(cmd), "%s 2>&1", worker);
	start_fails("worker, tls url without cert", cmd, 1, "is a TLS address",
	    NULL);

	// The CLI: a usage error (2), before any dial.
	snprintf(cmd, sizeof(cmd),
	    "%s --tls-cert '%s/node.crt' --tls-key '%s' info 2>&1", cli, good,
	    junk);
	start_fails("cli, garbage key", cmd, 2, junk, "--tls-key");
	snprintf(cmd, sizeof(cmd), "%s info 2>&1", cli);
	start_fails("cli, tls url without cert", cmd, 2, "is a TLS address",
	    NULL);

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", d);
	weft_h_run(cmd, NULL);
	free(d);
}
