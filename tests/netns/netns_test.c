// netns_test: a cluster over a real network: the coordinator and two
// workers each in their own network namespace, joined by veth pairs to a
// bridge in a fourth. Nodes listen on wildcard addresses, so what peers
// dial must come from what they learned (survey answers, join address).
// Then a worker's link is cut mid-run: it is declared lost, its steps run
// on the other worker, and when the link comes back it rejoins.
//
// Off loopback a node needs the cluster cookie: the test makes one and
// hands every node a copy, as an operator would; a node without it is not
// admitted, and a coordinator without it does not start.
//
// Built twice: netns_test on tcp://, and netns_tls_test (WEFT_NETNS_TLS=1)
// with every socket on tls+tcp:// and mutual TLS, certificates for the
// namespaces' addresses made at test time: the same cluster, partition and
// rejoin over TLS.
//
// Needs root (ip netns). Under CI it fails loudly rather than skip.
#include <criterion/criterion.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "alloc.h"
#include "clock.h"
#include "cluster.h"
#include "harness.h"

#ifndef WEFT_NETNS_TLS
#define WEFT_NETNS_TLS 0
#endif
#define SCHEME (WEFT_NETNS_TLS ? "tls+tcp" : "tcp")

static char  tag[16];  // suffix that makes our names unique
static char  dir[512]; // temp dir: db, logs
static pid_t coord, workers[2];
static char  control[64];
static char  cookie[600]; // the cluster cookie every node gets a copy of
static char  tokens[600]; // --api-tokens: the control socket is off loopback

// The CLI's token: a control socket on the bridge needs one.
#define NETNS_TOKEN "netns-operate-0123456789"
static char  tls_dir[600];     // certificates (WEFT_NETNS_TLS)
static char  tls_cert[700], tls_key[700], tls_ca[700];

// tls_argv appends the --tls-* flags to argv at *n (TLS build only).
static void
tls_argv(char **argv, int *n)
{
	if (!WEFT_NETNS_TLS) {
		return;
	}
	argv[(*n)++] = "--tls-cert";
	argv[(*n)++] = tls_cert;
	argv[(*n)++] = "--tls-key";
	argv[(*n)++] = tls_key;
	argv[(*n)++] = "--tls-ca";
	argv[(*n)++] = tls_ca;
	argv[*n]     = NULL;
}

#define NS_COUNT 4
static const char *ns_role[NS_COUNT] = { "sw", "c", "w1", "w2" };

static void
ns_name(int i, char *out, size_t len)
{
	snprintf(out, len, "weft-%s-%s", ns_role[i], tag);
}

static void
sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void
sh(const char *fmt, ...)
{
	char    cmd[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	cr_assert_eq(weft_h_run(cmd, NULL), 0, "failed: %s", cmd);
}

static void
net_up(void)
{
	char sw[64], ns[64];

	ns_name(0, sw, sizeof(sw));
	for (int i = 0; i < NS_COUNT; i++) {
		ns_name(i, ns, sizeof(ns));
		sh("ip netns add %s", ns);
		sh("ip -n %s link set lo up", ns);
	}
	sh("ip -n %s link add br0 type bridge && ip -n %s link set br0 up", sw, sw);
	for (int i = 1; i < NS_COUNT; i++) {
		ns_name(i, ns, sizeof(ns));
		// veth-<role><tag> lives in the switch; eth0 in the host.
		sh("ip link add v%s%s type veth peer name eth0 netns %s",
		    ns_role[i], tag, ns);
		sh("ip link set v%s%s netns %s", ns_role[i], tag, sw);
		sh("ip -n %s link set v%s%s master br0 up", sw, ns_role[i], tag);
		sh("ip -n %s addr add 10.77.0.%d/24 dev eth0", ns, i);
		sh("ip -n %s link set eth0 up", ns);
	}
}

static void
net_down(void)
{
	char ns[64], cmd[128];
	for (int i = 0; i < NS_COUNT; i++) {
		ns_name(i, ns, sizeof(ns));
		snprintf(cmd, sizeof(cmd), "ip netns del %s 2>/dev/null", ns);
		weft_h_run(cmd, NULL);
	}
}

// spawn_in runs a built binary inside namespace i.
static pid_t
spawn_in(int i, char **args, const char *log)
{
	char  ns[64], path[1024];
	char *argv[32] = { "/usr/sbin/ip", "netns", "exec", ns, path };
	int   n        = 5;

	ns_name(i, ns, sizeof(ns));
	snprintf(path, sizeof(path), "%s", weft_h_bin(args[0]));
	for (int k = 1; args[k] != NULL && n < 31; k++) {
		argv[n++] = args[k];
	}
	argv[n] = NULL;
	return (weft_h_spawn(argv, log));
}

// cli runs the CLI inside the coordinator's namespace.
static int
cli(char **out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int
cli(char **out, const char *fmt, ...)
{
	char    args[1024], cmd[5000], ns[64], tls[2200] = "";
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(args, sizeof(args), fmt, ap);
	va_end(ap);
	ns_name(1, ns, sizeof(ns));
	if (WEFT_NETNS_TLS) {
		snprintf(tls, sizeof(tls),
		    "--tls-cert '%s' --tls-key '%s' --tls-ca '%s'", tls_cert,
		    tls_key, tls_ca);
	}
	snprintf(cmd, sizeof(cmd),
	    "WEFT_TOKEN=" NETNS_TOKEN " ip netns exec %s '%s' --coordinator %s "
	    "%s %s",
	    ns, weft_h_bin("weft"), control, tls, args);
	return (weft_h_run(cmd, out));
}

static int
alive_workers(void)
{
	char   *out = NULL;
	json_t *ws  = NULL, *w;
	size_t  k;
	int     n = 0;

	if (cli(&out, "workers --json") == 0) {
		ws = json_loads(out, 0, NULL);
	}
	free(out);
	json_array_foreach (ws, k, w) {
		n += strcmp(json_string_value(json_object_get(w, "state")),
		         "alive") == 0;
	}
	json_decref(ws);
	return (n);
}

static void
wait_workers(int n)
{
	int64_t deadline = weft_clock_mono_ms() + weft_h_timeout_ms(20000);
	while (alive_workers() != n) {
		cr_assert(weft_clock_mono_ms() < deadline,
		    "expected %d alive workers", n);
		weft_clock_sleep_ms(100);
	}
}

static void
start_worker(int i)
{
	char  log[600], name[16], join[64], listen[64];
	char *args[24] = { "weft-worker", "--join", join, "--listen", listen,
		"--name", name, "--slots", "4", "--cookie-file", cookie, NULL };
	int   n        = 11;

	snprintf(join, sizeof(join), "%s://10.77.0.1:7421", SCHEME);
	snprintf(listen, sizeof(listen), "%s://0.0.0.0:0", SCHEME);
	tls_argv(args, &n);
	snprintf(name, sizeof(name), "w%d", i + 1);
	snprintf(log, sizeof(log), "%s/%s.log", dir, name);
	workers[i] = spawn_in(2 + i, args, log);
}

static void
up(void)
{
	char  db[600], log[600];
	char *d;

	if (getuid() != 0) {
		if (getenv("CI") != NULL) {
			cr_assert_fail("network namespace tests need root");
		}
		cr_skip_test("network namespace tests need root");
	}
	snprintf(tag, sizeof(tag), "%d", (int) getpid() % 100000);
	d = weft_h_tempdir("netns");
	snprintf(dir, sizeof(dir), "%s", d);
	free(d);
	net_up();
	// A cookie the way docs/security.md says to make one.
	snprintf(cookie, sizeof(cookie), "%s/cookie", dir);
	sh("umask 077 && head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \\n' "
	   "> '%s'", cookie);
	if (WEFT_NETNS_TLS) {
		// One CA; one certificate the nodes share, naming every
		// address they are reached by.
		snprintf(tls_dir, sizeof(tls_dir), "%s/tls", dir);
		weft_cluster_tls_certs(tls_dir, "node",
		    "IP:10.77.0.1,IP:10.77.0.2,IP:10.77.0.3");
		snprintf(tls_cert, sizeof(tls_cert), "%s/node.crt", tls_dir);
		snprintf(tls_key, sizeof(tls_key), "%s/node.key", tls_dir);
		snprintf(tls_ca, sizeof(tls_ca), "%s/ca.crt", tls_dir);
	}
	// Off loopback the control socket needs API tokens (or --insecure).
	snprintf(tokens, sizeof(tokens), "%s/tokens", dir);
	FILE *tf = fopen(tokens, "w");
	cr_assert_not_null(tf);
	fputs("netns operate " NETNS_TOKEN "\n", tf);
	fclose(tf);
	cr_assert_eq(chmod(tokens, 0600), 0);
	// The event stream off loopback only with mutual TLS: plain, it
	// stays on the coordinator's loopback, where the CLI runs.
	char cluster[64], results[64], events[64];
	snprintf(control, sizeof(control), "%s://10.77.0.1:7420", SCHEME);
	snprintf(cluster, sizeof(cluster), "%s://0.0.0.0:7421", SCHEME);
	snprintf(results, sizeof(results), "%s://0.0.0.0:7422", SCHEME);
	snprintf(events, sizeof(events), "%s://%s:7423", SCHEME,
	    WEFT_NETNS_TLS ? "10.77.0.1" : "127.0.0.1");
	snprintf(db, sizeof(db), "sqlite:%s/weft.db", dir);
	snprintf(log, sizeof(log), "%s/coordinator.log", dir);
	char *args[32] = { "weft-coordinator", "--db", db, "--control", control,
		"--api-tokens", tokens, "--cluster", cluster, "--results", results,
		"--events", events, "--http", "", "--survey-ms", "200",
		"--lost-after", "3", "--cookie-file", cookie, NULL };
	int   n        = 21;
	tls_argv(args, &n);
	coord = spawn_in(1, args, log);
	start_worker(0);
	start_worker(1);
	wait_workers(2);
}

static void
down(void)
{
	for (int i = 0; i < 2; i++) {
		weft_h_kill(workers[i], SIGTERM);
	}
	weft_h_kill(coord, SIGTERM);
	net_down();
	if (dir[0] != '\0' && getenv("WEFT_TEST_KEEP") == NULL) {
		char cmd[600];
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
		weft_h_run(cmd, NULL);
	}
}

TestSuite(netns, .init = up, .fini = down, .timeout = 240);

static const char *
write_def(int n, int ms)
{
	static char path[700];
	FILE       *f;

	snprintf(path, sizeof(path), "%s/par%d.json", dir, n);
	f = fopen(path, "w");
	fprintf(f, "{\"name\":\"par%d\",\"steps\":[", n);
	for (int i = 0; i < n; i++) {
		fprintf(f, "%s{\"id\":\"s%d\",\"type\":\"sleep\",\"with\":{\"ms\":%d}}",
		    i ? "," : "", i, ms);
	}
	fprintf(f, "]}");
	fclose(f);
	return (path);
}

Test(netns, steps_spread_over_machines)
{
	char *out;
	cr_assert_eq(cli(&out, "run '%s' --wait --json", write_def(8, 200)), 0,
	    "%s", out);
	json_t *run = json_loads(out, 0, NULL);
	free(out);
	cr_assert_not_null(run);
	json_t *steps = json_object_get(run, "steps");
	bool    seen[2] = { false, false };
	size_t  k;
	json_t *s;
	json_array_foreach (steps, k, s) {
		const char *node = json_string_value(json_object_get(s, "node"));
		seen[0] |= node && strcmp(node, "w1") == 0;
		seen[1] |= node && strcmp(node, "w2") == 0;
	}
	cr_expect(seen[0] && seen[1], "both machines ran steps");
	json_decref(run);
	// Each worker's advertised wildcard became its real address.
	cr_assert_eq(cli(&out, "workers --json"), 0, "%s", out);
	char want[64];
	snprintf(want, sizeof(want), "\"%s://10.77.0.2:", SCHEME);
	cr_expect(strstr(out, want) != NULL, "%s", out);
	snprintf(want, sizeof(want), "\"%s://10.77.0.3:", SCHEME);
	cr_expect(strstr(out, want) != NULL, "%s", out);
	free(out);
}

// node_running returns how many steps of run id are running on node,
// and the run's status into st (of size len).
static int
node_running(const char *id, const char *node, char *st, size_t len)
{
	char   *out;
	json_t *run, *s;
	size_t  k;
	int     n = 0;

	cr_assert_eq(cli(&out, "status %s --json", id), 0, "status %s: %s", id,
	    out);
	run = json_loads(out, 0, NULL);
	cr_assert_not_null(run, "status %s: not JSON: %s", id, out);
	free(out);
	const char *rs = json_string_value(json_object_get(run, "status"));
	snprintf(st, len, "%s", rs ? rs : "(none)");
	json_array_foreach (json_object_get(run, "steps"), k, s) {
		const char *sn = json_string_value(json_object_get(s, "node"));
		const char *ss = json_string_value(json_object_get(s, "status"));
		n += sn != NULL && ss != NULL && strcmp(sn, node) == 0 &&
		    strcmp(ss, "running") == 0;
	}
	json_decref(run);
	return (n);
}

Test(netns, partitioned_worker_is_lost_then_rejoins)
{
	char  sw[64], *out;
	char  id[64];

	ns_name(0, sw, sizeof(sw));
	cr_assert_eq(cli(&out, "run '%s'", write_def(8, 2000)), 0);
	out[strcspn(out, "\n")] = '\0';
	snprintf(id, sizeof(id), "%s", out);
	free(out);
	// Wait until w1 runs some of the steps (it has slots for 4 of the 8),
	// so that cutting it off strands them.
	int64_t deadline = weft_clock_mono_ms() + weft_h_timeout_ms(20000);
	char    st[32];
	while (node_running(id, "w1", st, sizeof(st)) == 0) {
		if (strcmp(st, "queued") != 0 && strcmp(st, "running") != 0) {
			cr_assert_fail("run %s is %s: it never ran a step on w1", id,
			    st);
		}
		if (weft_clock_mono_ms() > deadline) {
			cr_assert_fail("run %s: waited for a step running on w1, "
			               "saw none (run %s)",
			    id, st);
		}
		weft_clock_sleep_ms(50);
	}
	// Cut w1 off the network: no process dies, packets just stop.
	sh("ip -n %s link set v%s%s down", sw, "w1", tag);
	deadline    = weft_clock_mono_ms() + weft_h_timeout_ms(60000);
	json_t *run = NULL;
	for (;;) {
		cr_assert_eq(cli(&out, "status %s --json", id), 0, "status %s: %s",
		    id, out);
		json_decref(run);
		run = json_loads(out, 0, NULL);
		cr_assert_not_null(run, "status %s: not JSON: %s", id, out);
		free(out);
		const char *rs = json_string_value(json_object_get(run, "status"));
		if (rs != NULL && strcmp(rs, "running") != 0) {
			break;
		}
		if (weft_clock_mono_ms() > deadline) {
			cr_assert_fail("run %s: waited for it to end after w1 was cut "
			               "off, it is still %s",
			    id, rs ? rs : "(none)");
		}
		weft_clock_sleep_ms(200);
	}
	cr_expect_str_eq(json_string_value(json_object_get(run, "status")),
	    "succeeded");
	json_decref(run);
	cr_assert_eq(cli(&out, "events --type worker_lost"), 0, "%s", out);
	cr_expect(strstr(out, "\"w1\"") != NULL, "w1 was not declared lost: %s", out);
	free(out);
	cr_assert_eq(cli(&out, "events --run %s --type step_lost", id), 0, "%s",
	    out);
	cr_expect(strlen(out) > 0, "no step was lost with w1");
	free(out);
	// Heal the link: w1 answers surveys again and rejoins.
	sh("ip -n %s link set v%s%s up", sw, "w1", tag);
	wait_workers(2);
}

// The cookie checks belong to the tcp:// build: over mutual TLS a node
// without the CA's certificate never gets as far as the cookie (tls_test
// covers that).
#if !WEFT_NETNS_TLS
// file_has tells whether the file at path contains text.
static bool
file_has(const char *path, const char *text)
{
	char  *buf = NULL;
	size_t len = 0;
	FILE  *f   = fopen(path, "r");
	bool   has;

	if (f == NULL) {
		return (false);
	}
	buf = weft_xalloc(1 << 20);
	len = fread(buf, 1, (1 << 20) - 1, f);
	buf[len] = '\0';
	fclose(f);
	has = strstr(buf, text) != NULL;
	free(buf);
	return (has);
}

// A worker with another cookie (not the cluster's) is never admitted: it
// cannot read a survey, and nothing it says is taken.
Test(netns, worker_without_the_cookie_is_not_admitted)
{
	char  log[600], other[600], *out;
	char *args[] = { "weft-worker", "--join", "tcp://10.77.0.1:7421",
		"--listen", "tcp://0.0.0.0:0", "--name", "intruder", "--cookie-file",
		other, NULL };
	pid_t p;

	snprintf(other, sizeof(other), "%s/other-cookie", dir);
	sh("umask 077 && head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \\n' "
	   "> '%s'", other);
	snprintf(log, sizeof(log), "%s/intruder.log", dir);
	p = spawn_in(3, args, log);
	int64_t deadline = weft_clock_mono_ms() + weft_h_timeout_ms(20000);
	while (!file_has(log, "reason=EAUTH")) {
		cr_assert(weft_clock_mono_ms() < deadline,
		    "the intruder never logged a survey it could not verify");
		weft_clock_sleep_ms(100);
	}
	weft_clock_sleep_ms(1000); // five more survey rounds
	cr_assert_eq(cli(&out, "workers --json"), 0, "%s", out);
	cr_expect(strstr(out, "intruder") == NULL, "admitted: %s", out);
	free(out);
	cr_expect(file_has(log, "socket=cluster"), "dropped elsewhere?");
	cr_expect(!file_has(log, "COORD-FOUND"), "it learned the results URL");
	weft_h_kill(p, SIGTERM);
}

// Off loopback, a coordinator without a cookie refuses to start and says
// what to add; --insecure starts it anyway, with a warning.
Test(netns, off_loopback_without_a_cookie_refuses_to_start)
{
	char  log[600], db[600], missing[600];
	char *args[] = { "weft-coordinator", "--db", db, "--control",
		"tcp://10.77.0.1:7520", "--cluster", "tcp://0.0.0.0:7521",
		"--results", "tcp://0.0.0.0:7522", "--events", "tcp://10.77.0.1:7523",
		"--http", "", "--cookie-file", missing, NULL, NULL };
	pid_t p;
	int   st;

	snprintf(db, sizeof(db), "sqlite:%s/second.db", dir);
	snprintf(missing, sizeof(missing), "%s/no-such-cookie", dir);
	snprintf(log, sizeof(log), "%s/refused.log", dir);
	p = spawn_in(1, args, log);
	int64_t deadline = weft_clock_mono_ms() + weft_h_timeout_ms(10000);
	while (waitpid(p, &st, WNOHANG) == 0) {
		cr_assert(weft_clock_mono_ms() < deadline, "it started");
		weft_clock_sleep_ms(50);
	}
	cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 1, "status %d", st);
	cr_expect(file_has(log, "no cluster cookie at"), "no reason given");
	cr_expect(file_has(log, "--insecure"), "no way out named");
	cr_expect(access(missing, F_OK) != 0, "a cookie was made off loopback");
	// --insecure: it runs, and says so.
	args[15] = "--insecure";
	snprintf(log, sizeof(log), "%s/insecure.log", dir);
	p = spawn_in(1, args, log);
	weft_clock_sleep_ms(1500);
	cr_expect(weft_h_alive(p), "--insecure did not start");
	cr_expect(file_has(log, "INSECURE"), "no warning");
	weft_h_kill(p, SIGTERM);
}
#endif
