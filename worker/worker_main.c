// worker_main: the weft-worker program as a library call
// (weft_worker_main), so that a program embedding the worker with its own
// step types gets the same flags, cookie, TLS, signal and drain handling
// as weft-worker. Parses argv, installs the SIGINT/SIGTERM handlers and
// wires the worker library together; nothing else lives here.
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <nng/nng.h>

#include "auth.h"
#include "clock.h"
#include "cookie.h"
#include "log.h"
#include "wire.h"
#include "tls.h"
#include "watchdog.h"
#include "worker.h"

#define MAIN_MAX_ALLOW 64

static int main_sigpipe[2] = { -1, -1 }; // written by the signal handler
static volatile sig_atomic_t main_nsignals; // SIGINT/SIGTERM received
static const char *main_prog = "weft-worker"; // argv[0]'s base name

static void
main_usage(FILE *f)
{
	fprintf(f,
	    "usage: %s [options]\n"
	    "  --join URL        coordinator cluster URL (default %s)\n"
	    "  --listen URL      dispatch listener (default %s; port 0 picks "
	    "one)\n"
	    "  --name NAME       node name (default <hostname>-<pid>)\n"
	    "  --slots N         concurrent step attempts (default %d)\n"
	    "  --queue N         most attempts accepted beyond the slots, waiting\n"
	    "                    for one (default 1024; the coordinator keeps about\n"
	    "                    20 ms of work per slot queued, by step durations)\n"
	    "  --exec-allow DIR  directory exec steps may run programs from;\n"
	    "                    repeatable (default: none, exec always "
	    "fails)\n"
	    "  --spool DIR       keep results not yet acked in DIR/spool.db, sent\n"
	    "                    again after a restart\n"
	    "                    (default $WEFT_HOME/worker/<name>, else\n"
	    "                    ~/.weft/worker/<name>); --spool none or\n"
	    "  --no-spool        turn it off\n"
	    "  --drain-timeout D on SIGTERM/SIGINT, how long running attempts may\n"
	    "                    finish before they are aborted and reported lost\n"
	    "                    (default 30s; ms, s, m, h); a second signal exits\n"
	    "                    at once\n"
	    "  --reply-wait MS   the answer to an assignment of one step waits up\n"
	    "                    to MS for its result and carries it (0 to 1000;\n"
	    "                    default 5; 0: answer at once)\n"
	    "  --cookie-file F   the cluster cookie (default $WEFT_COOKIE_FILE, else\n"
	    "                    $WEFT_HOME/cookie, else ~/.weft/cookie); created when\n"
	    "                    missing if --join and --listen are on loopback\n"
	    "  --clock-skew D    refuse messages stamped further than D from our\n"
	    "                    clock (default 30s)\n"
	    "  --insecure        run off loopback without a cookie (warned)\n"
	    "  --tls-cert FILE   this node's certificate (PEM), for tls+tcp:// "
	    "URLs\n"
	    "  --tls-key FILE    the certificate's private key (PEM, "
	    "unencrypted)\n"
	    "  --tls-ca FILE     CA certificate(s) (PEM): the coordinator must "
	    "present a\n"
	    "                    certificate signed by it, and so must anyone "
	    "dialing us\n"
	    "  --log-level LVL   err, warn, notice, info (default) or debug\n"
	    "  --log-format F    logfmt (default) or json (env WEFT_LOG_FORMAT)\n"
	    "  --help            this text\n",
	    main_prog, WEFT_WORKER_DEFAULT_JOIN, WEFT_WORKER_DEFAULT_LISTEN,
	    WEFT_WORKER_DEFAULT_SLOTS);
}

// main_bad reports a bad command line and exits 2.
static void __attribute__((noreturn))
main_bad(const char *what, const char *arg)
{
	fprintf(stderr, "%s: %s: %s\n", main_prog, what, arg ? arg : "");
	fprintf(stderr, "try '%s --help'\n", main_prog);
	exit(2);
}

static int
main_level(const char *s)
{
	static const char *names[] = { "err", "warn", "notice", "info",
		"debug" };
	for (int i = 0; i < 5; i++) {
		if (strcmp(s, names[i]) == 0) {
			return (WEFT_LOG_ERR + i);
		}
	}
	main_bad("bad --log-level (err, warn, notice, info, debug)", s);
}

static uint32_t
main_count(const char *flag, const char *s, unsigned long min,
    unsigned long max)
{
	char         *end;
	unsigned long v;
	char          what[64];

	errno = 0;
	v     = strtoul(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < min || v > max ||
	    s[0] == '-') {
		snprintf(what, sizeof(what), "bad %s (%lu..%lu)", flag, min, max);
		main_bad(what, s);
	}
	return ((uint32_t) v);
}

static uint32_t
main_slots(const char *s)
{
	return (main_count("--slots", s, 1, 4096));
}

// What main_parse reads besides the worker's own settings.
typedef struct main_opts {
	const char *cookie_file;
	bool        insecure;
	const char *tls[3]; // --tls-cert, --tls-key, --tls-ca
	int         log_format; // -1: WEFT_LOG_FORMAT, else logfmt
} main_opts;

// main_parse fills cfg from argv; exits 2 on anything it does not accept.
static void
main_parse(int argc, char **argv, weft_worker_cfg *cfg, const char **allow,
    int *level, main_opts *mo)
{
	int64_t ms;
	char    err[256] = "";
	static const struct option opts[] = {
		{ "join", required_argument, NULL, 'j' },
		{ "listen", required_argument, NULL, 'l' },
		{ "name", required_argument, NULL, 'n' },
		{ "slots", required_argument, NULL, 's' },
		{ "queue", required_argument, NULL, 'q' },
		{ "exec-allow", required_argument, NULL, 'x' },
		{ "spool", required_argument, NULL, 'p' },
		{ "no-spool", no_argument, NULL, 'P' },
		{ "drain-timeout", required_argument, NULL, 'D' },
		{ "reply-wait", required_argument, NULL, 'R' },
		{ "log-level", required_argument, NULL, 'v' },
		{ "log-format", required_argument, NULL, 'G' },
		{ "cookie-file", required_argument, NULL, 'C' },
		{ "clock-skew", required_argument, NULL, 'S' },
		{ "insecure", no_argument, NULL, 'I' },
		{ "tls-cert", required_argument, NULL, '1' },
		{ "tls-key", required_argument, NULL, '2' },
		{ "tls-ca", required_argument, NULL, '3' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		switch (c) {
		case 'j': cfg->join_url = optarg; break;
		case 'l': cfg->listen_url = optarg; break;
		case 'n': cfg->name = optarg; break;
		case 's': cfg->slots = main_slots(optarg); break;
		case 'q': cfg->queue = (int32_t) main_count("--queue", optarg, 0, 65536); break;
		case 'p':
			if (optarg[0] == '\0') {
				main_bad("bad --spool (a directory, or none)", optarg);
			}
			cfg->spool = strcmp(optarg, "none") == 0 ? NULL : optarg;
			break;
		case 'P': cfg->spool = NULL; break;
		case 'R': {
			uint32_t v = main_count("--reply-wait", optarg, 0, 1000);
			cfg->reply_wait_ms = v > 0 ? (int32_t) v : -1;
			break;
		}
		case 'D':
			if (weft_duration_parse(optarg, &ms, err, sizeof(err)) !=
			        WEFT_OK ||
			    ms > 86400000) {
				fprintf(stderr, "%s: bad --drain-timeout: %s\n",
				    main_prog, err[0] ? err : "at most 1d");
				main_bad("bad --drain-timeout", optarg);
			}
			cfg->drain_timeout_ms = ms > 0 ? ms : 1;
			break;
		case 'v': *level = main_level(optarg); break;
		case 'G':
			if ((mo->log_format = weft_log_format_parse(optarg)) < 0) {
				main_bad("bad --log-format (logfmt, json)", optarg);
			}
			break;
		case 'C': mo->cookie_file = optarg; break;
		case 'I': mo->insecure = true; break;
		case 'S':
			if (!weft_clock_parse_duration(optarg, &ms) || ms < 1000 ||
			    ms > 86400000) {
				main_bad("bad --clock-skew (1s..1d, e.g. 30s)", optarg);
			}
			cfg->clock_skew_ms = (int) ms;
			break;
		case '1': mo->tls[0] = optarg; break;
		case '2': mo->tls[1] = optarg; break;
		case '3': mo->tls[2] = optarg; break;
		case 'h': main_usage(stdout); exit(0);
		case 'x':
			if (cfg->n_exec_allow == MAIN_MAX_ALLOW) {
				main_bad("too many --exec-allow", optarg);
			}
			allow[cfg->n_exec_allow++] = optarg;
			break;
		case ':': main_bad("option needs a value", argv[optind - 1]);
		default: main_bad("unknown option", argv[optind - 1]);
		}
	}
	if (optind < argc) {
		main_bad("unexpected argument", argv[optind]);
	}
	cfg->exec_allow = allow;
}

// A stop over WORKER_STOP_SLOW_MS logs its phase and every thread's stack
// (watchdog.h). After a drain that ended with every result acked, what is
// left (closing sockets, removing the spool's files, freeing) loses
// nothing: past WORKER_TEARDOWN_MS the watchdog ends the process with the
// status it would have returned, as the coordinator's does. nng 1.5.2 can
// hang in nng_close for good (watchdog.h). After any other stop the
// sockets close before the last results are written to the spool, so
// that close is not cut short.
#define WORKER_STOP_SLOW_MS 10000
#define WORKER_TEARDOWN_MS  2000

// main_on_refused stops the worker when the coordinator turns it away.
static void
main_on_refused(void *arg, const char *reason)
{
	(void) arg;
	(void) reason; // logged by the worker
	(void) !write(main_sigpipe[1], "r", 1);
}

// main_on_signal starts a drain on the first SIGINT/SIGTERM and exits at
// once on the second (128 + the signal, like a shell): whoever sends two
// does not want to wait. The spool is SQLite in WAL mode and survives that.
static void
main_on_signal(int sig)
{
	int saved = errno;

	if (++main_nsignals > 1) {
		static const char msg[] =
		    "weft-worker: second signal: exiting at once\n";
		(void) !write(2, msg, sizeof(msg) - 1);
		_exit(128 + sig);
	}
	(void) !write(main_sigpipe[1], "s", 1);
	errno = saved;
}

// main_signals routes SIGINT and SIGTERM to a pipe main can block on.
static int
main_signals(void)
{
	struct sigaction sa;

	if (pipe(main_sigpipe) != 0) {
		return (-1);
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = main_on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	return (0);
}

int
weft_worker_main(
    int argc, char **argv, const weft_step_type *types, size_t ntypes)
{
	weft_worker_cfg cfg;
	const char     *allow[MAIN_MAX_ALLOW];
	weft_worker    *w     = NULL;
	int             level = WEFT_LOG_INFO;
	int             rc    = 1;
	char            c     = 0;
	main_opts       mo    = { .log_format = -1 };
	weft_cookie     cookie;
	bool            have_cookie = false;
	weft_tls       *tls = NULL;
	char            err[1024];
	weft_err        err2;
	bool            drained = false; // every result acked: nothing to lose

	if (argc > 0 && argv[0] != NULL && argv[0][0] != '\0') {
		const char *slash = strrchr(argv[0], '/');

		main_prog = slash != NULL ? slash + 1 : argv[0];
	}
	memset(&cfg, 0, sizeof(cfg));
	cfg.queue = -1;
	cfg.spool = WEFT_WORKER_SPOOL_DEFAULT;
	main_parse(argc, argv, &cfg, allow, &level, &mo);
	weft_log_init("worker", level);
	if (mo.log_format >= 0) {
		weft_log_set_format(mo.log_format);
	}
	if (weft_crypto_init() != 0) {
		weft_log_err("WORKER-CRYPTO", "cannot initialise libsodium");
		return (1);
	}
	if (weft_cookie_for_node(&cookie, mo.cookie_file,
	        weft_auth_addr_loopback(
	            cfg.join_url ? cfg.join_url : WEFT_WORKER_DEFAULT_JOIN) &&
	            weft_auth_addr_loopback(cfg.listen_url
	                    ? cfg.listen_url
	                    : WEFT_WORKER_DEFAULT_LISTEN),
	        mo.insecure, &have_cookie, err, sizeof(err)) != WEFT_OK) {
		weft_log_err("WORKER-COOKIE", "%s", err);
		return (1);
	}
	cfg.cookie         = have_cookie ? &cookie : NULL;
	cfg.on_refused     = main_on_refused;
	if (weft_tls_open(&tls, mo.tls[0], mo.tls[1], mo.tls[2], err,
	        sizeof(err)) != WEFT_OK) {
		weft_log_err("WORKER-TLS", "error=\"%s\"", err);
		weft_cookie_clear(&cookie);
		return (1);
	}
	cfg.tls = tls;
	if (main_signals() != 0) {
		weft_log_err("WORKER-SIGNALS", "error=\"%s\"", strerror(errno));
		weft_tls_close(tls);
		return (1);
	}
	weft_watchdog_init();
	if (weft_worker_open(&w, &cfg) != WEFT_OK) {
		goto done;
	}
	weft_log_set_node(weft_worker_name(w));
	for (size_t i = 0; i < ntypes; i++) {
		if ((err2 = weft_worker_register(w, types[i].type, types[i].fn,
		         types[i].arg)) != WEFT_OK) {
			weft_log_err("WORKER-TYPE", "type=\"%s\" cannot be "
			    "registered: %s", types[i].type ? types[i].type : "",
			    weft_err_str(err2));
			goto done;
		}
	}
	if ((err2 = weft_worker_start(w)) != WEFT_OK) {
		// Another worker holds our spool: the name is taken here, as
		// with NODE-CONFLICT; a supervisor must not just retry.
		rc = err2 == WEFT_EEXIST ? 3 : 1;
		goto done;
	}
	while (read(main_sigpipe[0], &c, 1) < 0 && errno == EINTR) {
	}
	weft_log_info("WORKER-STOP", "name=%s", weft_worker_name(w));
	// Refused (its name is taken): exit 3, so a supervisor does not
	// just start it again under the same name.
	rc = c == 'r' ? 3 : 0;
	if (c == 's' && weft_worker_drain(w, 0) == WEFT_OK) {
		drained = true;
	} else if (c == 's' && cfg.spool == NULL) {
		// Results the coordinator never acked, and no spool to keep
		// them: say so with the exit status too.
		weft_log_err("WORKER-UNACKED", "name=%s: results not acked are "
		    "lost (no spool)", weft_worker_name(w));
		rc = 1;
	}
	weft_watchdog_arm("weft-worker", "worker close", WORKER_STOP_SLOW_MS);
	if (drained) {
		weft_watchdog_give_up(WORKER_TEARDOWN_MS, rc);
	}
done:
	weft_cookie_clear(&cookie);
	weft_worker_close(w);
	weft_tls_close(tls);
	close(main_sigpipe[0]);
	close(main_sigpipe[1]);
	weft_watchdog_disarm();
	// No nng_fini(), as in the coordinator. Once, in the chaos test
	// under ASan, a worker aborted here after a drain that lost nothing
	// (exit 134: one of nng's own threads unlocked a destroyed mutex).
	// nng 1.5.2's nng_fini stops its reaper only after the task queues
	// and timers it uses, the likeliest way in. Everything of ours is
	// closed and written by now; the exit frees the rest.
	return (rc);
}
