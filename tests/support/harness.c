// harness: process and port helpers for end-to-end tests.
#define _GNU_SOURCE // pipe2
#include "harness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "alloc.h"
#include "clock.h"

int64_t
weft_h_timeout_ms(int64_t ms)
{
	const char *m = getenv("WEFT_TEST_TIMEOUT_MULTIPLIER");
	long        k = m ? strtol(m, NULL, 10) : 1;
	return (ms * (k > 0 ? k : 1));
}

int
weft_h_connect(const char *hostport)
{
	struct sockaddr_in sa    = { .sin_family = AF_INET };
	const char        *colon = strrchr(hostport, ':');
	int                fd;

	if (colon == NULL) {
		return (-1);
	}
	sa.sin_port = htons((uint16_t) atoi(colon + 1));
	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) < 0) {
		return (-1);
	}
	if (connect(fd, (struct sockaddr *) &sa, sizeof(sa)) != 0) {
		close(fd);
		return (-1);
	}
	return (fd);
}

int
weft_h_free_port(void)
{
	// Bind port 0 and read what the kernel chose. The port is released
	// before anyone uses it: only for addresses that must have nobody
	// behind them. Servers under test bind port 0 themselves.
	struct sockaddr_in sa;
	socklen_t          len = sizeof(sa);
	int                fd  = socket(AF_INET, SOCK_STREAM, 0);
	int                port;

	memset(&sa, 0, sizeof(sa));
	sa.sin_family      = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || bind(fd, (struct sockaddr *) &sa, sizeof(sa)) != 0 ||
	    getsockname(fd, (struct sockaddr *) &sa, &len) != 0) {
		abort();
	}
	port = ntohs(sa.sin_port);
	close(fd);
	return (port);
}

// harness_port_bindable reports whether port on 127.0.0.1 can be listened
// on now (SO_REUSEADDR, as nng's listeners: a TIME_WAIT does not count).
static bool
harness_port_bindable(int port)
{
	struct sockaddr_in sa;
	int                fd = socket(AF_INET, SOCK_STREAM, 0);
	int                on = 1;
	bool               ok;

	if (fd < 0) {
		return (false);
	}
	memset(&sa, 0, sizeof(sa));
	sa.sin_family      = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sa.sin_port        = htons((uint16_t) port);
	(void) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
	ok = bind(fd, (struct sockaddr *) &sa, sizeof(sa)) == 0 &&
	    listen(fd, 1) == 0;
	close(fd);
	return (ok);
}

int
weft_h_listen_port(void)
{
	// Below the kernel's ephemeral range: a port from that range, given
	// up by a server that stops, can become the source port of any
	// connection on the machine before the server listens again ("Address
	// in use"). Tests run two at a time; a random pick keeps them apart.
	static bool seeded;
	int         low = 32768, high = 60999;
	FILE       *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");

	if (f != NULL) {
		if (fscanf(f, "%d %d", &low, &high) != 2) {
			low = 32768;
		}
		fclose(f);
	}
	if (!seeded) {
		srandom((unsigned) (getpid() ^ weft_clock_mono_ms()));
		seeded = true;
	}
	for (int i = 0; low > 11024 && i < 100; i++) {
		int port = 10000 + (int) (random() % (low - 1 - 10000));
		if (harness_port_bindable(port)) {
			return (port);
		}
	}
	return (weft_h_free_port());
}

int
weft_h_read_ports(const char *path, weft_h_ports *p)
{
	json_t *o = json_load_file(path, 0, NULL);
	struct {
		const char *key;
		char       *buf;
	} f[] = { { "control", p->control }, { "cluster", p->cluster },
		{ "results", p->results }, { "events", p->events },
		{ "http", p->http } };
	int rv = 0;

	if (o == NULL) {
		return (-1);
	}
	for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
		const char *v = json_string_value(json_object_get(o, f[i].key));
		if (v == NULL) {
			rv = 1;
			break;
		}
		snprintf(f[i].buf, sizeof(p->control), "%s", v);
	}
	json_decref(o);
	return (rv);
}

// ---- the test's process group ----
//
// Every process a test starts joins one process group, held open by a
// keeper process. The keeper waits on a pipe whose only write end the test
// process holds (close-on-exec, so no child inherits it); when the test
// process ends — passed, failed, or killed by a timeout — the pipe reads
// EOF and the keeper sends SIGKILL to the whole group, itself last.

static pid_t keeper_owner; // the test process the keeper serves
static char  keeper_home[512]; // the WEFT_HOME made for this test
static pid_t keeper_pgid;
static int   keeper_fd = -1;

static void
keeper_main(int rfd)
{
	char c;

	setpgid(0, 0);
	// Hold nothing of the test's open: another helper's pipe (the
	// PostgreSQL watchdog's) must see EOF when the test ends.
	for (int fd = 3; fd < 1024; fd++) {
		if (fd != rfd) {
			close(fd);
		}
	}
	signal(SIGTERM, SIG_IGN);
	signal(SIGINT, SIG_IGN);
	for (;;) {
		ssize_t n = read(rfd, &c, 1);
		if (n < 0 && errno == EINTR) {
			continue;
		}
		if (n <= 0) {
			break;
		}
	}
	kill(0, SIGKILL);
	_exit(0);
}

pid_t
weft_h_group(void)
{
	int   p[2];
	pid_t pid;

	if (keeper_owner == getpid() && keeper_pgid > 0) {
		return (keeper_pgid);
	}
	if (pipe2(p, O_CLOEXEC) != 0 || (pid = fork()) < 0) {
		abort();
	}
	if (pid == 0) {
		close(p[1]);
		keeper_main(p[0]);
	}
	if (keeper_home[0] == '\0' || keeper_owner != getpid()) {
		// Nodes started on loopback make a cluster cookie where
		// WEFT_HOME says: a test's own directory, never the home of
		// whoever runs the suite.
		char *home = weft_h_tempdir("home");
		setenv("WEFT_HOME", home, 1);
		unsetenv("WEFT_COOKIE_FILE");
		snprintf(keeper_home, sizeof(keeper_home), "%s", home);
		free(home);
	}
	close(p[0]);
	// The keeper leads its group once setpgid ran on either side.
	setpgid(pid, pid);
	if (keeper_fd >= 0 && keeper_owner == getpid()) {
		close(keeper_fd);
	}
	keeper_fd    = p[1];
	keeper_pgid  = pid;
	keeper_owner = getpid();
	return (pid);
}

void
weft_h_group_end(void)
{
	int st;

	if (keeper_owner != getpid() || keeper_pgid <= 0) {
		return;
	}
	close(keeper_fd);
	keeper_fd = -1;
	waitpid(keeper_pgid, &st, 0);
	// Reap the group's children of ours (their zombies stay otherwise).
	while (waitpid(-1, &st, WNOHANG) > 0) {
	}
	keeper_pgid = 0;
	if (keeper_home[0] != '\0') {
		char cmd[600];
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", keeper_home);
		(void) !system(cmd);
		keeper_home[0] = '\0';
	}
}

// harness_join puts a fresh child into the test's group.
static void
harness_join(pid_t pgid)
{
	if (setpgid(0, pgid) != 0) {
		_exit(126);
	}
}

// The directories weft_h_tempdir made in this process, removed when it
// exits (a suite run left ~20,000 behind in /tmp before).
static char **tempdirs;
static size_t ntempdirs;
static pid_t  tempdirs_owner;

static void
harness_tempdirs_remove(void)
{
	if (tempdirs_owner != getpid()) {
		return; // a forked child: the directories are its parent's
	}
	// What the test started and left running goes first: a node still
	// writing into a directory would leave part of it behind.
	weft_h_group_end();
	for (size_t k = 0; k < ntempdirs; k++) {
		if (getenv("WEFT_TEST_KEEP") == NULL) {
			char *argv[] = { "rm", "-rf", tempdirs[k], NULL };
			pid_t pid    = fork();
			int   st;
			if (pid == 0) {
				execvp(argv[0], argv);
				_exit(127);
			}
			while (pid > 0 && waitpid(pid, &st, 0) < 0 && errno == EINTR) {
			}
		}
		free(tempdirs[k]);
	}
	free(tempdirs);
	tempdirs  = NULL;
	ntempdirs = 0;
}

char *
weft_h_tempdir_kept(const char *tag)
{
	char        tmpl[512];
	const char *base = getenv("WEFT_TEST_TMP");

	snprintf(tmpl, sizeof(tmpl), "%s/weft-%s-XXXXXX", base ? base : "/tmp",
	    tag);
	if (mkdtemp(tmpl) == NULL) {
		abort();
	}
	return (weft_xstrdup(tmpl));
}

char *
weft_h_tempdir(const char *tag)
{
	char *dir = weft_h_tempdir_kept(tag);

	if (tempdirs_owner != getpid()) {
		// First in this process (a fork inherits its parent's list).
		if (tempdirs_owner == 0) {
			atexit(harness_tempdirs_remove);
		}
		for (size_t k = 0; k < ntempdirs; k++) {
			free(tempdirs[k]);
		}
		free(tempdirs);
		tempdirs       = NULL;
		ntempdirs      = 0;
		tempdirs_owner = getpid();
	}
	tempdirs = weft_xrealloc(tempdirs, (ntempdirs + 1) * sizeof(*tempdirs));
	tempdirs[ntempdirs++] = weft_xstrdup(dir);
	return (dir);
}

const char *
weft_h_bin(const char *name)
{
	static __thread char path[1024];
	const char          *sub = "cli";

	if (strcmp(name, "weft-coordinator") == 0) {
		sub = "coordinator";
	} else if (strcmp(name, "weft-worker") == 0) {
		sub = "worker";
	}
	snprintf(path, sizeof(path), "%s/%s/%s", WEFT_BIN_DIR, sub, name);
	return (path);
}

pid_t
weft_h_spawn(char *const argv[], const char *logfile)
{
	pid_t pgid = weft_h_group();
	pid_t pid  = fork();
	if (pid < 0) {
		abort();
	}
	if (pid == 0) {
		int         fd  = open(logfile ? logfile : "/dev/null",
                    O_WRONLY | O_CREAT | O_APPEND, 0644);
		const char *bin = argv[0];
		harness_join(pgid);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
			close(fd);
		}
		if (strchr(bin, '/') == NULL) {
			bin = weft_h_bin(bin);
		}
		execv(bin, argv);
		_exit(127);
	}
	setpgid(pid, pgid);
	return (pid);
}

bool
weft_h_alive(pid_t pid)
{
	int st;
	return (waitpid(pid, &st, WNOHANG) == 0);
}

void
weft_h_kill(pid_t pid, int sig)
{
	int             st;
	struct timespec ts = { 0, 10 * 1000 * 1000 };

	if (pid <= 0) {
		return;
	}
	kill(pid, sig);
	for (int i = 0; i < 500; i++) {
		if (waitpid(pid, &st, WNOHANG) != 0) {
			return;
		}
		nanosleep(&ts, NULL);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
}

int
weft_h_term(pid_t pid, int64_t limit_ms)
{
	int     st;
	int64_t deadline = weft_clock_mono_ms() + weft_h_timeout_ms(limit_ms);

	if (kill(pid, SIGTERM) != 0) {
		return (-1);
	}
	for (;;) {
		pid_t r = waitpid(pid, &st, WNOHANG);
		if (r == pid) {
			return (WIFEXITED(st) ? WEXITSTATUS(st)
			                      : 128 + WTERMSIG(st));
		}
		if (r < 0 && errno != EINTR) {
			return (-1);
		}
		if (weft_clock_mono_ms() > deadline) {
			weft_h_kill(pid, SIGKILL);
			return (-1);
		}
		weft_clock_sleep_ms(10);
	}
}

int
weft_h_run(const char *cmd, char **out)
{
	pid_t  pgid = weft_h_group();
	int    p[2];
	pid_t  pid;
	char  *buf = NULL;
	size_t len = 0, cap = 0;
	int    st;

	if (pipe2(p, O_CLOEXEC) != 0) {
		return (-1);
	}
	if ((pid = fork()) < 0) {
		close(p[0]);
		close(p[1]);
		return (-1);
	}
	if (pid == 0) {
		harness_join(pgid);
		dup2(p[1], 1);
		execl("/bin/sh", "sh", "-c", cmd, (char *) NULL);
		_exit(127);
	}
	setpgid(pid, pgid);
	close(p[1]);
	for (;;) {
		ssize_t n;
		if (cap - len < 4096) {
			cap = cap ? cap * 2 : 8192;
			buf = weft_xrealloc(buf, cap);
		}
		n = read(p[0], buf + len, cap - len - 1);
		if (n < 0 && errno == EINTR) {
			continue;
		}
		if (n <= 0) {
			break;
		}
		len += (size_t) n;
	}
	close(p[0]);
	buf[len] = '\0';
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
	}
	if (out != NULL) {
		*out = buf;
	} else {
		free(buf);
	}
	return (WIFEXITED(st) ? WEXITSTATUS(st) : -1);
}

int
weft_h_run_fmt(char **out, const char *fmt, ...)
{
	char    cmd[4096];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	return (weft_h_run(cmd, out));
}
