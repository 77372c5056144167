// weft-coordinator: parses flags, opens the engine, waits for a signal.
#include <errno.h>
#include <getopt.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>

#include "auth.h"
#include "clock.h"
#include "cookie.h"
#include "engine.h"
#include "admission.h"
#include "server.h"
#include "log.h"
#include "run.h"
#include "store.h"
#include "wire.h"
#include "tls.h"
#include "watchdog.h"

static volatile sig_atomic_t stop_requested;

static void
on_signal(int sig)
{
	(void) sig;
	stop_requested = 1;
}

// on_sigbus says what happened before dying. SQLite maps the WAL index
// (DB-shm) with mmap: when that file cannot take a write any more (made
// immutable, or its filesystem gone), touching the mapping raises SIGBUS
// inside SQLite, where nothing can be unwound safely. The store checks the
// file is writable before SQLite touches it (store_sqlite.c), so this is
// for a change between the check and the write: one line with
// async-signal-safe write(2), the stack of the thread that touched it
// (watchdog.h), then the default action (a core, like any crash);
// recovery on restart reads the store as always.
static void
on_sigbus(int sig)
{
	static const char msg[] =
	    "weft-coordinator: SIGBUS: the database's memory-mapped WAL index "
	    "(the -shm file beside the database) could not be written: is its "
	    "file immutable, or its filesystem gone? Stopping; committed "
	    "events are safe in the database\n";
	ssize_t n = write(STDERR_FILENO, msg, sizeof(msg) - 1);
	(void) n;
	weft_watchdog_stack(); // which thread touched it, and doing what
	signal(sig, SIG_DFL);
	raise(sig);
}

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: weft-coordinator [options]\n"
	    "  --db URL          event store: sqlite:PATH (default sqlite:weft.db),\n"
	    "                    postgres://user:pass@host:port/db or \"host=... dbname=...\"\n"
	    "  --control URL     control socket, CLI and tools (default tcp://127.0.0.1:7420)\n"
	    "  --cluster URL     discovery survey socket, workers --join it (default tcp://127.0.0.1:7421)\n"
	    "  --results URL     step results from workers (default tcp://127.0.0.1:7422)\n"
	    "  --events URL      event stream, pub/sub (default tcp://127.0.0.1:7423)\n"
	    "  --http HOST:PORT  dashboard, HTTP API and the WebSocket event stream\n"
	    "                    (default 127.0.0.1:7480; \"\" turns HTTP off)\n"
	    "  --http-allow-host NAME  also accept HTTP requests for Host NAME (a name\n"
	    "                    the server is reached by; repeatable)\n"
	    "  --api-tokens FILE API tokens, one \"NAME ROLE TOKEN\" a line (ROLE read or\n"
	    "                    operate; mode 0600): the HTTP API, the WebSocket stream\n"
	    "                    and the control socket then need one (env WEFT_API_TOKENS)\n"
	    "  --insecure        start anyway where it is refused otherwise: --http or\n"
	    "                    --control off loopback without --api-tokens, node\n"
	    "                    sockets off loopback without a cookie (warned, and\n"
	    "                    \"insecure\": true in /health)\n"
	    "  --dashboard DIR   serve the dashboard from DIR (default: the installed\n"
	    "                    copy, else the source tree's dashboard/)\n"
	    "  --init            start a new database where $WEFT_HOME/databases\n"
	    "                    records one that is missing (or another one), and\n"
	    "                    record it; a first start on a new path needs no flag\n"
	    "  --name NAME       node name (default coordinator)\n"
	    "  --survey-ms N     survey interval in ms (default 1000)\n"
	    "  --lost-after N    missed surveys before a worker is lost (default 3)\n"
	    "  --unschedulable-after D  a ready step whose type no live worker has\n"
	    "                    advertised for D gets one step_unschedulable event\n"
	    "                    (default 60s; 1s to 1d: 30s, 2m, 1h; bare number: s)\n"
	    "  --idempotency-window D  a run request's idempotency key answers the\n"
	    "                    run it made for D (default 24h; 1s to 30d)\n"
	    "  --projection-lag MS  hold a step's rows in the steps table back up\n"
	    "                    to MS (0 to 60000; default 1000; 0: write each\n"
	    "                    transition in its batch); events are never held\n"
	    "  --cookie-file F   the cluster cookie (default $WEFT_COOKIE_FILE, else\n"
	    "                    $WEFT_HOME/cookie, else ~/.weft/cookie); created when\n"
	    "                    missing if the node sockets are all on loopback\n"
	    "  --clock-skew D    refuse node messages stamped further than D from our\n"
	    "                    clock, e.g. 30s (default 30s)\n"

	    "  --retain D        delete runs that ended longer than D ago, with\n"
	    "                    their steps and events, e.g. 30d (default forever);\n"
	    "                    a definition's \"retain\" overrides it for its runs\n"
	    "  --max-output N    most bytes of a step's or map item's output (JSON):\n"
	    "                    larger fails the attempt, naming the limit; 1KiB to\n"
	    "                    12MiB, e.g. 4MiB (the default) or 65536\n"
	    "  --def-cache N     keep at most N compiled definitions in memory\n"
	    "                    (default 256); those of live runs stay even past\n"
	    "                    it, the least recently used others are dropped\n"
	    "                    and read again from the store when needed\n"
	    "  --max-depth N     most levels of child runs (workflow steps) under\n"
	    "                    a run, 1 to 1000 (default 8)\n"
	    "  --max-running-runs N  most runs running at once; the others wait\n"
	    "                    queued, admitted by priority then age (default:\n"
	    "                    no limit)\n"
	    "  --limit TYPE=N    most attempts of step type TYPE running at once,\n"
	    "                    cluster-wide (repeatable)\n"
	    "  --priority-aging-ms N  a ready step gains one priority per N ms\n"
	    "                    it waits, so low priorities are not starved\n"
	    "                    (default 0: off)\n"
	    "  --order O         order of ready steps of equal priority: fifo, or\n"
	    "                    critical-path (the default: longest expected\n"
	    "                    remaining path first, once durations are learned)\n"
	    "  --log-level L     err, warn, notice, info or debug (default info)\n"
	    "  --log-format F    logfmt (default) or json: one record a line on\n"
	    "                    stderr, with the node, run, step and attempt it\n"
	    "                    concerns (env WEFT_LOG_FORMAT)\n"
	    "  --ports-file FILE once every socket is bound, write their addresses\n"
	    "                    (ports chosen for a port 0 included) to FILE as JSON\n"
	    "  --secret-key-file FILE  seal run secrets in the store under a key\n"
	    "                    derived from FILE (at least 32 bytes, mode 0600)\n"
	    "                    instead of the cluster cookie\n"
	    "  --tls-cert FILE   this node's certificate (PEM), for tls+tcp:// URLs;\n"
	    "                    with --tls-key, HTTP is https:// and its stream wss://\n"
	    "  --tls-key FILE    the certificate's private key (PEM, unencrypted)\n"
	    "  --tls-ca FILE     CA certificate(s) (PEM): every peer must present a\n"
	    "                    certificate signed by it (mutual TLS)\n");
}

static int
parse_int(const char *flag, const char *v, int min, int max)
{
	char *end;
	long  n = strtol(v, &end, 10);
	if (*v == '\0' || *end != '\0' || n < min || n > max) {
		fprintf(stderr, "weft-coordinator: %s wants a number in %d..%d, got \"%s\"\n",
		    flag, min, max, v);
		exit(2);
	}
	return ((int) n);
}

// parse_type_limit adds one --limit TYPE=N to cfg (sched).
static void
parse_type_limit(weft_engine_cfg *cfg, const char *v)
{
	char     type[130], err[300];
	uint32_t n;

	if (!weft_limit_parse_type(v, type, sizeof(type), &n, err,
	        sizeof(err))) {
		fprintf(stderr, "weft-coordinator: %s\n", err);
		exit(2);
	}
	if (cfg->type_limits == NULL) {
		cfg->type_limits = json_object(); // kept for the process
	}
	json_object_set_new(cfg->type_limits, type, json_integer(n));
}

// parse_order reads --order fifo|critical-path (sched).
static void
parse_order(weft_engine_cfg *cfg, const char *v)
{
	char err[300];
	bool critical;

	if (!weft_order_parse(v, &critical, err, sizeof(err))) {
		fprintf(stderr, "weft-coordinator: %s\n", err);
		exit(2);
	}
	cfg->order_fifo = !critical;
}

static int
parse_duration(const char *flag, const char *v)
{
	int64_t ms;

	if (!weft_clock_parse_duration(v, &ms) || ms < 1000 || ms > 86400000) {
		fprintf(stderr, "weft-coordinator: %s wants a duration from 1s to "
		    "1d, such as 30s, got \"%s\"\n", flag, v);
		exit(2);
	}
	return ((int) ms);
}

// Long options without a one-letter code (issue 14 on).
#define OPT_IDEM_WINDOW 0x1401
#define OPT_PROJECTION_LAG 0x1402

// parse_idem_window reads --idempotency-window: 1s to 30d (a key answers
// its run that long; the default is 24h).
static int64_t
parse_idem_window(const char *v)
{
	int64_t ms;

	if (!weft_clock_parse_duration(v, &ms) || ms < 1000 ||
	    ms > 30LL * 86400000) {
		fprintf(stderr, "weft-coordinator: --idempotency-window wants a "
		    "duration from 1s to 30d, such as 24h, got \"%s\"\n", v);
		exit(2);
	}
	return (ms);
}

// parse_size reads --max-output: bytes, or with a unit (1048576, 512KiB,
// 4MiB; K and M too), from 1 KiB to WEFT_RUN_MAX_OUTPUT_CEIL.
static uint64_t
parse_size(const char *flag, const char *v)
{
	char              *end;
	unsigned long long n = strtoull(v, &end, 10);
	uint64_t           mul = 1;

	if (strcmp(end, "KiB") == 0 || strcmp(end, "K") == 0) {
		mul = 1024;
	} else if (strcmp(end, "MiB") == 0 || strcmp(end, "M") == 0) {
		mul = 1024 * 1024;
	} else if (*end != '\0') {
		mul = 0;
	}
	if (v[0] < '0' || v[0] > '9' || mul == 0 || n > (1ull << 40) ||
	    n * mul < 1024 || n * mul > WEFT_RUN_MAX_OUTPUT_CEIL) {
		fprintf(stderr, "weft-coordinator: %s wants a size from 1KiB to "
		    "%lluMiB, such as 4MiB or 65536, got \"%s\"\n", flag,
		    (unsigned long long) (WEFT_RUN_MAX_OUTPUT_CEIL >> 20), v);
		exit(2);
	}
	return (n * mul);
}

// parse_retain reads --retain: how long ended runs are kept, with units
// ("30d", "12h"); "forever" (the default) keeps them.
static int64_t
parse_retain(const char *v)
{
	int64_t ms;

	if (strcmp(v, "forever") == 0) {
		return (0);
	}
	// A unit is required: a bare "30" would be seconds, rarely meant.
	if (!weft_clock_parse_duration(v, &ms) || ms <= 0 || v[0] == '\0' ||
	    v[strlen(v) - 1] < 'a' || v[strlen(v) - 1] > 'z') {
		fprintf(stderr, "weft-coordinator: --retain wants a duration "
		    "with units (d, h, m, s, ms), such as 30d, or \"forever\"; "
		    "got \"%s\"\n", v);
		exit(2);
	}
	return (ms);
}

// allow_host_add appends name to the comma-separated --http-allow-host list.
static void
allow_host_add(weft_engine_cfg *cfg, const char *name)
{
	static char list[2048];
	size_t      n = strlen(list);

	if (name[0] == '\0' || strchr(name, ',') != NULL ||
	    n + strlen(name) + 2 > sizeof(list)) {
		fprintf(stderr, "weft-coordinator: --http-allow-host wants a host "
		                "name (no commas), got \"%s\"\n", name);
		exit(2);
	}
	snprintf(list + n, sizeof(list) - n, "%s%s", n ? "," : "", name);
	cfg->http_allow_host = list;
}

// secret_key_load sets the key run secrets are sealed under: derived from
// the file given with --secret-key-file (a key file like the cookie: at
// least 32 bytes, mode 0600, never created), else from the cluster cookie.
// With neither (--insecure without a cookie) there is no key, and runs
// that carry secrets are refused.
static int
secret_key_load(weft_engine_cfg *cfg, const char *file,
    const weft_cookie *cookie)
{
	weft_cookie ck;
	char        err[1024];

	if (file == NULL) {
		if (cookie != NULL) {
			weft_cookie_derive(cookie, "secrets", cfg->secret_key);
			cfg->has_secret_key = true;
		}
		return (0);
	}
	// Never created: a key made up here would seal secrets no other
	// coordinator could open.
	if (access(file, F_OK) != 0) {
		weft_log_err("START", "--secret-key-file %s: %s", file,
		    strerror(errno));
		return (-1);
	}
	if (weft_cookie_load(&ck, file, false, err, sizeof(err)) != WEFT_OK) {
		weft_log_err("START", "--secret-key-file %s: %s", file, err);
		return (-1);
	}
	weft_cookie_derive(&ck, "secrets", cfg->secret_key);
	weft_cookie_clear(&ck);
	cfg->has_secret_key = true;
	return (0);
}

// events_check refuses an --events listener off loopback unless it is
// mutual TLS: nng's pub socket cannot tell subscribers apart, so anyone
// who reaches it would read every event, run inputs included. Remote
// watchers use the WebSocket stream, which checks a token.
static int
events_check(const weft_engine_cfg *cfg)
{
	if (weft_auth_addr_loopback(cfg->events_url) ||
	    (weft_tls_url(cfg->events_url) && weft_tls_mutual(cfg->tls))) {
		return (0);
	}
	if (cfg->insecure) {
		weft_log_warn("INSECURE",
		    "--events %s is off loopback without mutual TLS "
		    "(--insecure): anyone who reaches it reads every event",
		    cfg->events_url);
		return (0);
	}
	weft_log_err("START",
	    "--events %s is off loopback: anyone who reaches it would read "
	    "every event. Keep it on loopback and watch remotely over the "
	    "WebSocket stream (weft --stream wss://HOST:PORT/api/v1/stream "
	    "--token ...), or make it tls+tcp:// with --tls-ca (mutual TLS); "
	    "--insecure starts anyway",
	    cfg->events_url);
	return (-1);
}

// coordinator_stop stops in order: the engine's threads first (nothing
// replies any more), then the sockets and HTTP, then the engine's state.
//
// A stop over COORDINATOR_STOP_SLOW_MS logs its phase and every thread's
// stack (watchdog.h). Once the engine has stopped, everything is durable
// and what is left only frees memory and closes sockets: past
// COORDINATOR_TEARDOWN_MS the watchdog ends the process with the status
// code it would have returned. nng 1.5.2 can hang in nng_close for good
// (watchdog.h); before this bound such a coordinator kept its ports until
// it was killed, and the next one could not listen.
#define COORDINATOR_STOP_SLOW_MS 10000
#define COORDINATOR_TEARDOWN_MS  2000

static void
coordinator_stop(weft_engine *e, weft_server *srv, int code)
{
	weft_watchdog_arm("weft-coordinator", "engine stop",
	    COORDINATOR_STOP_SLOW_MS);
	weft_engine_stop(e);
	weft_watchdog_phase("server close");
	weft_watchdog_give_up(COORDINATOR_TEARDOWN_MS, code);
	weft_server_close(srv);
	weft_watchdog_phase("engine close");
	weft_engine_close(e);
	weft_watchdog_disarm();
}

// write_ports writes the bound addresses to path as one JSON object, through
// a temporary file and rename: a reader sees all of it or nothing.
static int
write_ports(const weft_server *srv, const char *path)
{
	weft_server_addrs a;
	char              tmp[4096];
	json_t           *o;
	int               rv;

	weft_server_bound(srv, &a);
	o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:i}", "control", a.control,
	    "cluster", a.cluster, "results", a.results, "events", a.events,
	    "http", a.http, "pid", (int) getpid());
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	rv = o == NULL || json_dump_file(o, tmp, JSON_COMPACT) != 0 ||
	        rename(tmp, path) != 0
	    ? -1
	    : 0;
	json_decref(o);
	return (rv);
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "db", required_argument, NULL, 'd' },
		{ "control", required_argument, NULL, 'c' },
		{ "cluster", required_argument, NULL, 'k' },
		{ "results", required_argument, NULL, 'r' },
		{ "events", required_argument, NULL, 'e' },
		{ "http", required_argument, NULL, 'h' },
		{ "http-allow-host", required_argument, NULL, 'H' },
		{ "dashboard", required_argument, NULL, 'D' },
		{ "api-tokens", required_argument, NULL, 'T' },
		{ "insecure", no_argument, NULL, 'I' },
		{ "name", required_argument, NULL, 'n' },
		{ "survey-ms", required_argument, NULL, 's' },
		{ "lost-after", required_argument, NULL, 'l' },
		{ "unschedulable-after", required_argument, NULL, 'U' },
		{ "idempotency-window", required_argument, NULL, OPT_IDEM_WINDOW },
		{ "projection-lag", required_argument, NULL, OPT_PROJECTION_LAG },
		{ "log-level", required_argument, NULL, 'L' },
		{ "log-format", required_argument, NULL, 'G' },
		{ "ports-file", required_argument, NULL, 'P' },
		{ "cookie-file", required_argument, NULL, 'C' },
		{ "clock-skew", required_argument, NULL, 'S' },
		{ "secret-key-file", required_argument, NULL, 'K' },
		{ "tls-cert", required_argument, NULL, '1' },
		{ "tls-key", required_argument, NULL, '2' },
		{ "tls-ca", required_argument, NULL, '3' },
		{ "init", no_argument, NULL, 'N' },
		{ "retain", required_argument, NULL, 'R' },
		{ "max-output", required_argument, NULL, 'O' },
		{ "def-cache", required_argument, NULL, 'F' },
		{ "max-depth", required_argument, NULL, 'W' },
		// Tests only, not in --help (docs/testing.md): the engine's
		// clock runs MS ahead and `weft clock advance` moves it.
		{ "test-clock", required_argument, NULL, 'X' },
		{ "max-running-runs", required_argument, NULL, 'M' },
		{ "limit", required_argument, NULL, 'Y' },
		{ "priority-aging-ms", required_argument, NULL, 'A' },
		{ "order", required_argument, NULL, 'Q' },
		{ "help", no_argument, NULL, '?' },
		{ NULL, 0, NULL, 0 },
	};
	weft_engine_cfg cfg = {
		.name        = "coordinator",
		.db_url      = "sqlite:weft.db",
		.control_url = "tcp://127.0.0.1:7420",
		.cluster_url = "tcp://127.0.0.1:7421",
		.results_url = "tcp://127.0.0.1:7422",
		.events_url  = "tcp://127.0.0.1:7423",
		.http        = "127.0.0.1:7480",
		.survey_ms   = 1000,
		.lost_after  = 3,
	};
	weft_engine *e;
	weft_server *srv = NULL;
	char         err[1024];
	const char  *ports_file = NULL;
	const char  *cookie_file = NULL;
	weft_cookie  cookie;
	bool         have_cookie;
	const char  *secret_key_file = NULL;
	int          c, rv;
	const char  *tls_cert = NULL, *tls_key = NULL, *tls_ca = NULL;
	weft_tls    *tls = NULL;
	char         db_registry[4096];

	// No fastbins: glibc keeps small freed chunks in them and later
	// merges them all at once (malloc_consolidate), which perf had at
	// ~30% of the engine thread on W3 (a batch's events, documents and
	// strings freed together). Freed chunks now merge as they are freed.
	// weft-bench W3, ten alternating pairs: faster in eight, median
	// ~10% (README, Measured).
	mallopt(M_MXFAST, 0);
	weft_log_init("coordinator", WEFT_LOG_INFO);
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'd': cfg.db_url = optarg; break;
		case 'c': cfg.control_url = optarg; break;
		case 'k': cfg.cluster_url = optarg; break;
		case 'r': cfg.results_url = optarg; break;
		case 'e': cfg.events_url = optarg; break;
		case 'h': cfg.http = optarg; break;
		case 'H': allow_host_add(&cfg, optarg); break;
		case 'D': cfg.dashboard = optarg; break;
		case 'T': cfg.api_tokens = optarg; break;
		case 'I': cfg.insecure = true; break;
		case 'n': cfg.name = optarg; break;
		case 's': cfg.survey_ms = parse_int("--survey-ms", optarg, 50, 600000); break;
		case 'l': cfg.lost_after = parse_int("--lost-after", optarg, 1, 1000); break;
		case 'P': ports_file = optarg; break;
		case 'C': cookie_file = optarg; break;
		case 'S': cfg.clock_skew_ms = parse_duration("--clock-skew", optarg); break;
		case 'R': cfg.retain_ms = parse_retain(optarg); break;
		case 'O': cfg.max_output = parse_size("--max-output", optarg); break;
		case 'F':
			cfg.def_cache = parse_int("--def-cache", optarg, 1, 10000000);
			break;
		case 'W':
			cfg.max_depth = (uint32_t) parse_int("--max-depth", optarg, 1,
			    1000);
			break;
		case 'M':
			cfg.max_running_runs = (uint32_t) parse_int(
			    "--max-running-runs", optarg, 1, 100000000);
			break;
		case 'Y': parse_type_limit(&cfg, optarg); break;
		case 'A':
			cfg.priority_aging_ms = parse_int("--priority-aging-ms",
			    optarg, 0, 86400000);
			break;
		case 'Q': parse_order(&cfg, optarg); break;
		case 'U':
			cfg.unschedulable_after_ms =
			    parse_duration("--unschedulable-after", optarg);
			break;
		case 'X': {
			char     *end;
			long long ms = strtoll(optarg, &end, 10);
			if (*optarg == '\0' || *end != '\0' || ms < 0 ||
			    ms > 100LL * 366 * 86400000) {
				fprintf(stderr, "weft-coordinator: --test-clock wants "
				    "an offset in ms (0 to 100 years), got \"%s\"\n",
				    optarg);
				exit(2);
			}
			cfg.test_clock    = true;
			cfg.test_clock_ms = (int64_t) ms;
			break;
		}
		case OPT_IDEM_WINDOW:
			cfg.idempotency_window_ms =
			    parse_idem_window(optarg);
			break;
		case OPT_PROJECTION_LAG: {
			int ms = parse_int("--projection-lag", optarg, 0, 60000);
			cfg.projection_lag_ms = ms > 0 ? ms : -1;
			break;
		}
		case 'K': secret_key_file = optarg; break;
		case '1': tls_cert = optarg; break;
		case '2': tls_key = optarg; break;
		case '3': tls_ca = optarg; break;
		case 'N': cfg.db_init = true; break;
		case 'L':
			setenv("WEFT_LOG_LEVEL", optarg, 1);
			weft_log_init("coordinator", WEFT_LOG_INFO);
			break;
		case 'G':
			if ((rv = weft_log_format_parse(optarg)) < 0) {
				fprintf(stderr, "weft-coordinator: bad --log-format "
				    "\"%s\" (logfmt or json)\n", optarg);
				return (2);
			}
			weft_log_set_format(rv);
			break;
		default: {
			int help = strcmp(argv[optind - 1], "--help") == 0;
			usage(help ? stdout : stderr);
			return (help ? 0 : 2);
		}
		}
	}
	weft_log_set_node(cfg.name != NULL ? cfg.name : "coordinator");
	if (optind < argc) {
		fprintf(stderr, "weft-coordinator: unexpected argument \"%s\"\n", argv[optind]);
		usage(stderr);
		return (2);
	}
	if (cfg.api_tokens == NULL) {
		cfg.api_tokens = getenv("WEFT_API_TOKENS");
	}
	if (weft_crypto_init() != 0) {
		weft_log_err("START", "cannot initialise libsodium");
		return (1);
	}
	if (weft_cookie_for_node(&cookie, cookie_file,
	        weft_auth_addr_loopback(cfg.cluster_url) &&
	            weft_auth_addr_loopback(cfg.results_url) &&
	            weft_auth_addr_loopback(cfg.events_url),
	        cfg.insecure, &have_cookie, err, sizeof(err)) != WEFT_OK) {
		weft_log_err("START", "%s", err);
		return (1);
	}
	cfg.cookie = have_cookie ? &cookie : NULL;
	if (secret_key_load(&cfg, secret_key_file, cfg.cookie) != 0) {
		return (1);
	}
	signal(SIGPIPE, SIG_IGN);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	weft_watchdog_init(); // before on_sigbus, which prints a stack
	signal(SIGBUS, on_sigbus);
	// SIGINT and SIGTERM wait blocked, in every thread started from here
	// on, until main sleeps in sigsuspend: a signal (or the engine's
	// pthread_kill when the store it waited for is refused) can then
	// never land between the check of stop_requested and the sleep.
	sigset_t stop_sigs, run_mask;
	sigemptyset(&stop_sigs);
	sigaddset(&stop_sigs, SIGINT);
	sigaddset(&stop_sigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &stop_sigs, &run_mask);
	sigdelset(&run_mask, SIGINT);
	sigdelset(&run_mask, SIGTERM);
	// Which database each path held: a recorded one that vanished is
	// refused rather than replaced by an empty one. An unavailable store
	// (PostgreSQL not up yet, a full disk) is waited for, not fatal.
	weft_home_path("databases", db_registry, sizeof(db_registry));
	cfg.db_registry    = db_registry;
	cfg.wait_for_store = true;
	if (weft_tls_open(&tls, tls_cert, tls_key, tls_ca, err, sizeof(err)) !=
	    WEFT_OK) {
		weft_log_err("START", "%s", err);
		return (1);
	}
	cfg.tls = tls;
	if (events_check(&cfg) != 0) {
		weft_tls_close(tls);
		return (1);
	}
	rv = weft_engine_open(&e, &cfg, err, sizeof(err));
	sodium_memzero(cfg.secret_key, sizeof(cfg.secret_key)); // copied
	if (rv != 0) {
		weft_log_err("START", "%s", err);
		weft_tls_close(tls);
		return (1);
	}
	if (weft_server_open(&srv, e, err, sizeof(err)) != 0) {
		weft_log_err("START", "%s", err);
		weft_engine_close(e);
		weft_tls_close(tls);
		return (1);
	}
	if (weft_engine_start(e) != 0 || weft_server_start(srv) != 0) {
		weft_log_err("START", "cannot start the engine threads");
		coordinator_stop(e, srv, 1);
		weft_tls_close(tls);
		return (1);
	}
	if (ports_file != NULL && write_ports(srv, ports_file) != 0) {
		weft_log_err("START", "cannot write --ports-file %s: %s",
		    ports_file, strerror(errno));
		coordinator_stop(e, srv, 1);
		weft_tls_close(tls);
		return (1);
	}
	char db[256];
	weft_server_addrs bound;
	weft_server_bound(srv, &bound);
	weft_store_redact(cfg.db_url, db, sizeof(db));
	weft_log_notice("START", "name=%s control=%s cluster=%s "
	    "results=%s events=%s db=%s", cfg.name, bound.control,
	    bound.cluster, bound.results, bound.events, db);
	while (!stop_requested) {
		sigsuspend(&run_mask);
	}
	if (weft_engine_failed(e)) {
		// The store it waited for was refused (logged): not a signal.
		coordinator_stop(e, srv, 1);
		weft_cookie_clear(&cookie);
		weft_tls_close(tls);
		return (1);
	}
	weft_log_notice("STOP", "signal received, shutting down");
	coordinator_stop(e, srv, 0);
	weft_cookie_clear(&cookie);
	weft_tls_close(tls);
	json_decref(cfg.type_limits); // the engine's copy of cfg retained it
	return (0);
}
