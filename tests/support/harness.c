// harness: process and port helpers for end-to-end tests.
#include "harness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"

int64_t
weft_h_timeout_ms(int64_t ms)
{
	const char *m = getenv("WEFT_TEST_TIMEOUT_MULTIPLIER");
	long        k = m ? strtol(m, NULL, 10) : 1;
	return (ms * (k > 0 ? k : 1));
}

int
weft_h_free_port(void)
{
	// Bind port 0 and read what the kernel chose. A small race remains
	// (someone else may take it before we listen) that tests tolerate.
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

char *
weft_h_tempdir(const char *tag)
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
	pid_t pid = fork();
	if (pid < 0) {
		abort();
	}
	if (pid == 0) {
		int         fd  = open(logfile ? logfile : "/dev/null",
                    O_WRONLY | O_CREAT | O_APPEND, 0644);
		const char *bin = argv[0];
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
			close(fd);
		}
		if (strchr(bin, '/') == NULL) {
			bin = weft_h_bin(bin);
		}
		// Die with the test process so nothing outlives a crash.
		setpgid(0, 0);
		execv(bin, argv);
		_exit(127);
	}
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
weft_h_run(const char *cmd, char **out)
{
	FILE  *p = popen(cmd, "r");
	char  *buf = NULL;
	size_t len = 0, cap = 0;
	int    st;

	if (p == NULL) {
		return (-1);
	}
	for (;;) {
		if (cap - len < 4096) {
			cap = cap ? cap * 2 : 8192;
			buf = weft_xrealloc(buf, cap);
		}
		size_t n = fread(buf + len, 1, cap - len - 1, p);
		if (n == 0) {
			break;
		}
		len += n;
	}
	buf[len] = '\0';
	st       = pclose(p);
	if (out != NULL) {
		*out = buf;
	} else {
		free(buf);
	}
	return (WIFEXITED(st) ? WEXITSTATUS(st) : -1);
}
