// cluster: the local cluster weft-bench measures: a coordinator and two
// workers started from the built binaries on loopback, in a temp dir that
// is removed at the end. Every socket is on a port the coordinator chose
// itself (port 0, read back from its --ports-file): a port picked here and
// bound later could be taken by another process first. Every wait here has
// a deadline.
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "clock.h"
#include "commit_log.h"
#include "harness.h"

#define CLUSTER_START_MS 15000 // coordinator answering, workers alive

// cluster_proc_status_kb reads one "Name:   N kB" line of
// /proc/<pid>/status; -1 when it cannot.
static double cluster_proc_status_kb(pid_t pid, const char *name);

// cluster_spawn_coord starts the coordinator, under the commit shim when
// c->commit_log is set. The environment is changed only around the fork so
// the workers never see the shim.
static void
cluster_spawn_coord(bench_cluster *c)
{
	const char *had_pre  = getenv("LD_PRELOAD");
	const char *had_asan = getenv("ASAN_OPTIONS");
	char        saved_pre[1024] = "", saved_asan[1024] = "";
	char        buf[1200], log[700];
	// The first start binds port 0 everywhere; a restart (W5's kill -9)
	// asks for the addresses the first one got: the workers and the
	// bench's clients know those.
	bool        again = c->control[0] != '\0';
	const char *any   = "tcp://127.0.0.1:0";
	char       *argv[] = { "weft-coordinator", "--db", c->db, "--control",
		      (char *) (again ? c->control : any), "--cluster",
		      (char *) (again ? c->cluster : any), "--results",
		      (char *) (again ? c->results : any), "--events",
		      (char *) (again ? c->events : any), "--http",
		      again ? c->http : "127.0.0.1:0", "--ports-file", c->ports,
		      NULL, NULL, NULL };

	if (c->order != NULL) {
		argv[15] = "--order";
		argv[16] = (char *) c->order;
	}

	snprintf(log, sizeof(log), "%s/coordinator.log", c->dir);
	unlink(c->ports); // read again once this one has bound
	snprintf(saved_pre, sizeof(saved_pre), "%s", had_pre ? had_pre : "");
	snprintf(saved_asan, sizeof(saved_asan), "%s", had_asan ? had_asan : "");
	if (c->commit_log[0] != '\0') {
		snprintf(buf, sizeof(buf), "%s%s%s", WEFT_BENCH_SHIM,
		    saved_pre[0] != '\0' ? ":" : "", saved_pre);
		setenv("LD_PRELOAD", buf, 1);
		// A sanitizer build of the coordinator refuses to start when
		// another library is preloaded before the ASan runtime.
		snprintf(buf, sizeof(buf), "%s%sverify_asan_link_order=0",
		    saved_asan, saved_asan[0] != '\0' ? ":" : "");
		setenv("ASAN_OPTIONS", buf, 1);
		setenv(BENCH_COMMIT_LOG_ENV, c->commit_log, 1);
	}
	c->coord = weft_h_spawn(argv, log);
	if (c->commit_log[0] != '\0') {
		if (had_pre != NULL) {
			setenv("LD_PRELOAD", saved_pre, 1);
		} else {
			unsetenv("LD_PRELOAD");
		}
		if (had_asan != NULL) {
			setenv("ASAN_OPTIONS", saved_asan, 1);
		} else {
			unsetenv("ASAN_OPTIONS");
		}
		unsetenv(BENCH_COMMIT_LOG_ENV);
	}
}

static void
cluster_spawn_worker(bench_cluster *c, const bench_opts *o, int i)
{
	char  log[700], name[16];
	char *argv[16];
	int   n = 0;

	snprintf(name, sizeof(name), "w%d", i);
	snprintf(log, sizeof(log), "%s/%s.log", c->dir, name);
	argv[n++] = "weft-worker";
	argv[n++] = "--join";
	argv[n++] = c->cluster;
	argv[n++] = "--name";
	argv[n++] = name;
	if (o->slots != NULL) {
		argv[n++] = "--slots";
		argv[n++] = (char *) o->slots;
	}
	if (o->queue != NULL) {
		argv[n++] = "--queue";
		argv[n++] = (char *) o->queue;
	}
	argv[n] = NULL;
	c->workers[i] = weft_h_spawn(argv, log);
}

// cluster_wait_coord waits until the coordinator has written the addresses
// it bound and answers an info request on its control socket.
static bool
cluster_wait_coord(bench_cluster *c, int64_t deadline)
{
	char         err[256] = "";
	weft_h_ports p;
	int          rv = -1;

	while (!bench_stopping && weft_clock_mono_ms() < deadline) {
		bench_client cl;
		json_t      *info = NULL;

		if (!weft_h_alive(c->coord)) {
			fprintf(stderr, "weft-bench: the coordinator exited\n");
			c->coord = 0;
			return (false);
		}
		if (rv != 0 && (rv = weft_h_read_ports(c->ports, &p)) == 0) {
			memcpy(c->control, p.control, sizeof(c->control));
			memcpy(c->cluster, p.cluster, sizeof(c->cluster));
			memcpy(c->results, p.results, sizeof(c->results));
			memcpy(c->events, p.events, sizeof(c->events));
			memcpy(c->http, p.http, sizeof(c->http));
		}
		if (rv == 1) {
			fprintf(stderr, "weft-bench: %s lacks an address\n",
			    c->ports);
			return (false);
		}
		if (rv == 0 &&
		    bench_client_open(&cl, c->control, 1000, err, sizeof(err))) {
			info = bench_client_info(&cl, err, sizeof(err));
			bench_client_close(&cl);
		}
		if (info != NULL) {
			json_decref(info);
			return (true);
		}
		weft_clock_sleep_ms(50);
	}
	fprintf(stderr, "weft-bench: the coordinator did not answer (%s)\n",
	    err);
	return (false);
}

static int
cluster_alive_workers(bench_client *cl)
{
	Weft__ControlRequest  req = WEFT__CONTROL_REQUEST__INIT;
	Weft__WorkersRequest  wr  = WEFT__WORKERS_REQUEST__INIT;
	char                  err[256];
	json_t               *ws, *w;
	size_t                k;
	int                   n = 0;

	req.req_case = WEFT__CONTROL_REQUEST__REQ_WORKERS;
	req.workers  = &wr;
	ws           = bench_client_call(cl, &req, err, sizeof(err));
	json_array_foreach (ws, k, w) {
		const char *st = json_string_value(json_object_get(w, "state"));
		n += st != NULL && strcmp(st, "alive") == 0;
	}
	json_decref(ws);
	return (n);
}

static bool
cluster_wait_workers(bench_cluster *c, int64_t deadline)
{
	bench_client cl;
	char         err[256];
	bool         ok = false;

	if (!bench_client_open(&cl, c->control, 2000, err, sizeof(err))) {
		fprintf(stderr, "weft-bench: %s\n", err);
		return (false);
	}
	while (!bench_stopping && weft_clock_mono_ms() < deadline) {
		if (cluster_alive_workers(&cl) >= BENCH_NWORKERS) {
			ok = true;
			break;
		}
		for (int i = 0; i < BENCH_NWORKERS; i++) {
			if (!weft_h_alive(c->workers[i])) {
				fprintf(stderr, "weft-bench: worker w%d exited\n", i);
				c->workers[i] = 0;
				goto done;
			}
		}
		weft_clock_sleep_ms(50);
	}
	if (!ok) {
		fprintf(stderr, "weft-bench: the workers did not join in time\n");
	}
done:
	bench_client_close(&cl);
	return (ok);
}

bool
bench_cluster_start(bench_cluster *c, const bench_opts *o)
{
	char   *dir = weft_h_tempdir_kept("bench"); // --keep keeps it
	int64_t deadline;

	memset(c, 0, sizeof(*c));
	snprintf(c->dir, sizeof(c->dir), "%s", dir);
	free(dir);
	// The cluster's own cookie, made by its coordinator in the temp
	// dir, and its own home there too (the workers' spools, the
	// database registry): a bench never touches the user's ~/.weft.
	char cookie[700];
	snprintf(cookie, sizeof(cookie), "%s/cookie", c->dir);
	setenv("WEFT_COOKIE_FILE", cookie, 1);
	setenv("WEFT_HOME", c->dir, 1);
	if (o->db != NULL) {
		snprintf(c->db, sizeof(c->db), "%s", o->db);
	} else {
		snprintf(c->db, sizeof(c->db), "sqlite:%s/weft.db", c->dir);
	}
	if (o->commit_hist) {
		snprintf(c->commit_log, sizeof(c->commit_log), "%s/commits.bin",
		    c->dir);
	}
	snprintf(c->ports, sizeof(c->ports), "%s/ports.json", c->dir);

	deadline = weft_clock_mono_ms() + weft_h_timeout_ms(CLUSTER_START_MS);
	c->order = o->order;
	cluster_spawn_coord(c);
	if (!cluster_wait_coord(c, deadline)) {
		goto fail;
	}
	c->base_rss_kb = cluster_proc_status_kb(c->coord, "VmRSS");
	for (int i = 0; i < BENCH_NWORKERS; i++) {
		cluster_spawn_worker(c, o, i);
	}
	if (!cluster_wait_workers(c, deadline)) {
		goto fail;
	}
	return (true);

fail:
	bench_cluster_dump_logs(c);
	return (false);
}

void
bench_cluster_stop(bench_cluster *c, bool keep)
{
	for (int i = 0; i < BENCH_NWORKERS; i++) {
		if (c->workers[i] > 0) {
			weft_h_kill(c->workers[i], SIGTERM);
			c->workers[i] = 0;
		}
	}
	if (c->coord > 0) {
		weft_h_kill(c->coord, SIGTERM);
		c->coord = 0;
	}
	if (c->dir[0] != '\0') {
		if (keep) {
			fprintf(stderr, "weft-bench: kept %s\n", c->dir);
		} else {
			char cmd[700];
			snprintf(cmd, sizeof(cmd), "rm -rf '%s'", c->dir);
			weft_h_run(cmd, NULL);
		}
		c->dir[0] = '\0';
	}
}

void
bench_cluster_dump_logs(const bench_cluster *c)
{
	char cmd[800];

	if (c->dir[0] == '\0') {
		return;
	}
	snprintf(cmd, sizeof(cmd),
	    "for f in '%s'/*.log; do echo \"== $f\"; tail -n 30 \"$f\"; "
	    "done >&2",
	    c->dir);
	weft_h_run(cmd, NULL);
}

// cluster_proc_cpu_ms reads utime + stime of pid from /proc/<pid>/stat.
static double
cluster_proc_cpu_ms(pid_t pid)
{
	char               path[64], buf[1024];
	FILE              *f;
	size_t             n;
	const char        *p;
	unsigned long long ut = 0, st = 0;

	if (pid <= 0) {
		return (0.0);
	}
	snprintf(path, sizeof(path), "/proc/%d/stat", (int) pid);
	if ((f = fopen(path, "r")) == NULL) {
		return (0.0);
	}
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	// The command name (field 2) may hold spaces: count from its ')'.
	if ((p = strrchr(buf, ')')) == NULL ||
	    sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu "
	                  "%llu", &ut, &st) != 2) {
		return (0.0);
	}
	return ((double) (ut + st) * 1000.0 / (double) sysconf(_SC_CLK_TCK));
}

void
bench_cluster_cpu_ms(const bench_cluster *c, double *coord, double *workers)
{
	*coord   = cluster_proc_cpu_ms(c->coord);
	*workers = 0.0;
	for (int i = 0; i < BENCH_NWORKERS; i++) {
		*workers += cluster_proc_cpu_ms(c->workers[i]);
	}
}

double
bench_self_cpu_ms(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ((double) (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000.0 +
	    (double) (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1000.0);
}

static double
cluster_proc_status_kb(pid_t pid, const char *name)
{
	char   path[64], line[256];
	FILE  *f;
	double v = -1.0;
	size_t len = strlen(name);

	if (pid <= 0) {
		return (-1.0);
	}
	snprintf(path, sizeof(path), "/proc/%d/status", (int) pid);
	if ((f = fopen(path, "r")) == NULL) {
		return (-1.0);
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		if (strncmp(line, name, len) == 0 && line[len] == ':') {
			v = strtod(line + len + 1, NULL);
			break;
		}
	}
	fclose(f);
	return (v);
}

void
bench_cluster_rss_kb(const bench_cluster *c, double *rss, double *peak)
{
	*rss  = cluster_proc_status_kb(c->coord, "VmRSS");
	*peak = cluster_proc_status_kb(c->coord, "VmHWM");
}

void
bench_cluster_reset_peak(const bench_cluster *c)
{
	char  path[64];
	FILE *f;

	// "5" resets VmHWM to the current RSS (Linux 4.0+): the peak of
	// one repetition, not of the coordinator's life.
	snprintf(path, sizeof(path), "/proc/%d/clear_refs", (int) c->coord);
	if (c->coord > 0 && (f = fopen(path, "w")) != NULL) {
		fputs("5", f);
		fclose(f);
	}
}

void
bench_cluster_stop_workers(bench_cluster *c)
{
	for (int i = 0; i < BENCH_NWORKERS; i++) {
		if (c->workers[i] > 0) {
			weft_h_kill(c->workers[i], SIGTERM);
			c->workers[i] = 0;
		}
	}
}

bool
bench_cluster_start_workers(bench_cluster *c, const bench_opts *o)
{
	for (int i = 0; i < BENCH_NWORKERS; i++) {
		if (c->workers[i] == 0) {
			cluster_spawn_worker(c, o, i);
		}
	}
	return (cluster_wait_workers(c,
	    weft_clock_mono_ms() + weft_h_timeout_ms(CLUSTER_START_MS)));
}

bool
bench_cluster_crash_restart(bench_cluster *c, int64_t *answered_ms)
{
	int64_t t0;

	if (c->coord > 0) {
		weft_h_kill(c->coord, SIGKILL);
		c->coord = 0;
	}
	t0 = weft_clock_mono_ms();
	cluster_spawn_coord(c);
	if (!cluster_wait_coord(c, t0 + weft_h_timeout_ms(600000))) {
		return (false);
	}
	*answered_ms = weft_clock_mono_ms() - t0;
	return (true);
}
