// exec: the built-in step type that runs a program from an --exec-allow
// directory in its own process group: input JSON on stdin, output JSON from
// stdout, the exit code decides success, the last 4 KiB of stderr are kept,
// and the whole group is killed on abort, timeout or when the leader exits.
// The attempt heartbeats while the program lives, and the lines it writes
// to descriptor WEFT_PROGRESS_FD (3) are its progress (progress.c).
//
// _GNU_SOURCE: pipe2 (O_CLOEXEC at creation, since other slots fork at any
// time), close_range and pidfd_open (wait for the child inside poll).
#define _GNU_SOURCE
#include "worker_impl.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "alloc.h"
#include "log.h"
#include "clock.h"
#include "jsonx.h"

#define EXEC_STDOUT_MAX ((size_t) 4 << 20) // bytes of stdout kept
#define EXEC_TAIL 4096                       // bytes of stderr kept
#define EXEC_SLICE 10 // ms between checks when no pidfd is available
// What the guard process gets when the worker dies (PR_SET_PDEATHSIG):
// caught, it kills the program's whole process group (exec_guard).
#define EXEC_GUARD_SIG SIGUSR1
#define EXEC_PROGRESS_FD 3 // the program's progress descriptor

// One running child and everything read from it. Descriptors are -1 when
// closed.
typedef struct exec_job {
	char            *path;       // resolved program (owned)
	const char      *cwd;        // allow directory it lies under (worker's)
	char           **argv;       // strings borrowed from the input document
	char           **envp;       // owned, with owned strings
	char            *stdin_text; // input document as JSON (owned)
	size_t           stdin_len;
	size_t           stdin_off;  // bytes written so far
	struct sigaction dfl;        // SIG_DFL, ready before fork
	pid_t            parent;     // the worker, as the child should see it
	pid_t            pid;        // also the process group id
	int              in;         // child's stdin (write end)
	int              out;        // child's stdout (read end)
	int              err;        // child's stderr (read end)
	int              pidfd;      // readable when the child exits
	int              abortfd;    // readable when the attempt is aborted
	int              prog;       // child's progress lines (read end)
	worker_progress  progress;   // what came through prog so far
	char            *outbuf;     // stdout so far
	size_t           outlen;
	size_t           outcap;
	char             tail[EXEC_TAIL + 1]; // last stderr bytes, terminated
	size_t           taillen;
	bool             timed_out;
	bool             aborted;
	bool             too_big;
	int              status;     // from waitpid
} exec_job;

// exec_under returns the allow directory that contains path, or NULL.
static const char *
exec_under(const weft_worker *w, const char *path)
{
	for (size_t i = 0; i < w->nallow; i++) {
		size_t n = strlen(w->allow[i]);
		if (n == 1 && w->allow[i][0] == '/') {
			return (w->allow[i]);
		}
		if (strncmp(path, w->allow[i], n) == 0 && path[n] == '/') {
			return (w->allow[i]);
		}
	}
	return (NULL);
}

// exec_find_relative looks cmd up in each allow directory in turn. On
// success *path is the resolved program; when it resolves somewhere outside
// every allow directory, *outside gets that path for the message.
static void
exec_find_relative(const weft_worker *w, const char *cmd, char **path,
    char **outside)
{
	char joined[PATH_MAX];
	char real[PATH_MAX];

	for (size_t i = 0; i < w->nallow && *path == NULL; i++) {
		snprintf(joined, sizeof(joined), "%s/%s", w->allow[i], cmd);
		if (realpath(joined, real) == NULL) {
			continue;
		}
		if (exec_under(w, real) != NULL) {
			*path = weft_xstrdup(real);
		} else if (*outside == NULL) {
			*outside = weft_xstrdup(real);
		}
	}
}

// exec_refuse answers a command that may not run with one message, the
// same whatever the reason — missing, outside every allow directory (also
// through .. or a link), not executable — so that the answer, which ends
// up in the run's events, tells nothing of what exists on this machine.
// The worker's own log (local to its operator) says which it was.
static int
exec_refuse(char **error, const char *cmd, const char *why, const char *path)
{
	weft_log_info("EXEC-REFUSED", "cmd=%s reason=%s path=%s", cmd, why,
	    path != NULL ? path : "-");
	return (worker_step_error(error,
	    "exec: \"%s\" is not allowed (not an executable program under an "
	    "--exec-allow directory)",
	    cmd));
}

// exec_resolve turns cmd[0] into a canonical program path under an allow
// directory, or refuses it.
static int
exec_resolve(const weft_worker *w, exec_job *j, const char *cmd, char **error)
{
	char  real[PATH_MAX];
	char *outside = NULL;
	int   rc;

	if (w->nallow == 0) {
		return (worker_step_error(
		    error, "exec: this worker has no --exec-allow directory"));
	}
	if (cmd[0] == '/') {
		if (realpath(cmd, real) == NULL) {
			return (exec_refuse(error, cmd, strerror(errno), NULL));
		}
		if (exec_under(w, real) == NULL) {
			return (exec_refuse(error, cmd, "outside", real));
		}
		j->path = weft_xstrdup(real);
	} else {
		exec_find_relative(w, cmd, &j->path, &outside);
	}
	if (j->path == NULL) {
		rc = exec_refuse(error, cmd,
		    outside != NULL ? "outside" : "not found", outside);
		free(outside);
		return (rc);
	}
	free(outside);
	j->cwd = exec_under(w, j->path);
	if (access(j->path, X_OK) != 0) {
		return (exec_refuse(error, cmd, "not executable", j->path));
	}
	return (0);
}

// exec_argv checks with.cmd and borrows its strings into j->argv.
static int
exec_argv(json_t *input, exec_job *j, char **error)
{
	json_t *cmd = json_object_get(json_object_get(input, "with"), "cmd");
	size_t  n   = json_array_size(cmd);

	if (!json_is_array(cmd) || n == 0) {
		goto bad;
	}
	j->argv = weft_xalloc(sizeof(char *) * (n + 1));
	for (size_t i = 0; i < n; i++) {
		json_t *s = json_array_get(cmd, i);
		if (!json_is_string(s) || strlen(json_string_value(s)) !=
		        json_string_length(s)) {
			goto bad;
		}
		j->argv[i] = (char *) json_string_value(s);
	}
	if (j->argv[0][0] == '\0') {
		goto bad;
	}
	return (0);
bad:
	worker_step_error(
	    error, "exec: with.cmd must be a non-empty array of strings");
	return (-1);
}

// exec_env copies the environment without our variables, then adds them
// for this attempt.
static void
exec_env(exec_job *j, const weft_step_ctx *ctx)
{
	static const char *ours[] = { "WEFT_IDEMPOTENCY_KEY=", "WEFT_RUN_ID=",
		"WEFT_STEP_ID=", "WEFT_ATTEMPT=", "WEFT_PROGRESS_FD=" };
	const size_t       nours  = sizeof(ours) / sizeof(ours[0]);
	size_t n = 0;
	size_t k = 0;
	char   buf[1100];

	while (environ != NULL && environ[n] != NULL) {
		n++;
	}
	j->envp = weft_xalloc(sizeof(char *) * (n + nours + 1));
	for (size_t i = 0; i < n; i++) {
		bool skip = false;
		for (size_t o = 0; o < nours; o++) {
			skip |= strncmp(environ[i], ours[o], strlen(ours[o])) == 0;
		}
		if (!skip) {
			j->envp[k++] = weft_xstrdup(environ[i]);
		}
	}
	snprintf(buf, sizeof(buf), "%s%s", ours[0], ctx->idempotency_key);
	j->envp[k++] = weft_xstrdup(buf);
	snprintf(buf, sizeof(buf), "%s%s", ours[1], ctx->run_id);
	j->envp[k++] = weft_xstrdup(buf);
	snprintf(buf, sizeof(buf), "%s%s", ours[2], ctx->step_id);
	j->envp[k++] = weft_xstrdup(buf);
	snprintf(buf, sizeof(buf), "%s%u", ours[3], ctx->attempt);
	j->envp[k++] = weft_xstrdup(buf);
	snprintf(buf, sizeof(buf), "%s%d", ours[4], EXEC_PROGRESS_FD);
	j->envp[k++] = weft_xstrdup(buf);
}

// exec_guard_fire: the guard's parent (the worker) died. Take the whole
// process group with it: the program and everything it started.
static void
exec_guard_fire(int sig)
{
	(void) sig;
	kill(0, SIGKILL);
}

// exec_guard splits the child in two and returns in the program's half.
// The other half, the guard, leads the process group, waits for the
// program and exits as it did, so the worker sees the program's status.
// The guard is what dies with the worker (PR_SET_PDEATHSIG): it then
// kills the group, so a program's own children (a shell script's
// commands) cannot go on with a side effect either while the step is
// retried elsewhere. The program itself dies with the guard. Only
// async-signal-safe calls: the worker has threads.
static void
exec_guard(const exec_job *j)
{
	struct sigaction sa;
	sigset_t         none;
	pid_t            guard = getpid(), p;
	int              st;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = exec_guard_fire;
	sigaction(EXEC_GUARD_SIG, &sa, NULL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	// If the worker is gone already, do not start at all.
	if (prctl(PR_SET_PDEATHSIG, EXEC_GUARD_SIG) != 0 ||
	    getppid() != j->parent) {
		_exit(127);
	}
	if ((p = fork()) < 0) {
		_exit(127);
	}
	if (p == 0) {
		sigaction(EXEC_GUARD_SIG, &j->dfl, NULL);
		if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 ||
		    getppid() != guard) {
			_exit(127);
		}
		return;
	}
	while (waitpid(p, &st, 0) < 0) {
		if (errno != EINTR) {
			_exit(127);
		}
	}
	if (WIFSIGNALED(st)) {
		sigaction(WTERMSIG(st), &j->dfl, NULL);
		kill(guard, WTERMSIG(st));
		_exit(128 + WTERMSIG(st));
	}
	_exit(WEXITSTATUS(st));
}

// exec_child runs in the forked child: only async-signal-safe calls.
static void __attribute__((noreturn))
exec_child(const exec_job *j, int in, int out, int err, int prog)
{
	static const char msg[] = "weft exec: cannot start the program\n";

	setpgid(0, 0);
	if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0) {
		_exit(127);
	}
	// The progress pipe at a fixed number; dup2 onto itself would keep
	// its close-on-exec flag.
	if (prog == EXEC_PROGRESS_FD) {
		if (fcntl(prog, F_SETFD, 0) != 0) {
			_exit(127);
		}
	} else if (dup2(prog, EXEC_PROGRESS_FD) < 0) {
		_exit(127);
	}
	close_range(EXEC_PROGRESS_FD + 1, ~0U, 0);
	// A fresh program expects default SIGPIPE and an empty mask; the
	// worker's threads may have blocked or ignored either (exec_guard
	// empties the mask).
	sigaction(SIGPIPE, &j->dfl, NULL);
	exec_guard(j);
	if (chdir(j->cwd) == 0) {
		execve(j->path, j->argv, j->envp);
	}
	(void) !write(2, msg, sizeof(msg) - 1);
	_exit(127);
}

// exec_spawn forks the child with three pipes.
static int
exec_spawn(exec_job *j, char **error)
{
	int in[2] = { -1, -1 }, out[2] = { -1, -1 }, err[2] = { -1, -1 };
	int prog[2] = { -1, -1 };

	memset(&j->dfl, 0, sizeof(j->dfl));
	j->dfl.sa_handler = SIG_DFL;
	j->parent         = getpid();
	if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0 ||
	    pipe2(err, O_CLOEXEC) != 0 || pipe2(prog, O_CLOEXEC) != 0) {
		worker_step_error(error, "exec: pipe: %s", strerror(errno));
		goto done;
	}
	if ((j->pid = fork()) < 0) {
		worker_step_error(error, "exec: fork: %s", strerror(errno));
		goto done;
	}
	if (j->pid == 0) {
		exec_child(j, in[0], out[1], err[1], prog[1]);
	}
	// Both sides set the group, so killpg works whoever runs first.
	setpgid(j->pid, j->pid);
	j->in  = in[1];
	j->out = out[0];
	j->err = err[0];
	j->prog = prog[0];
	in[1] = out[0] = err[0] = prog[0] = -1;
	fcntl(j->prog, F_SETFL, O_NONBLOCK);
	fcntl(j->in, F_SETFL, O_NONBLOCK);
	fcntl(j->out, F_SETFL, O_NONBLOCK);
	fcntl(j->err, F_SETFL, O_NONBLOCK);
	j->pidfd = (int) syscall(SYS_pidfd_open, j->pid, 0);
done:
	for (int i = 0; i < 2; i++) {
		int *fds[] = { &in[i], &out[i], &err[i], &prog[i] };
		for (int k = 0; k < 4; k++) {
			if (*fds[k] >= 0) {
				close(*fds[k]);
			}
		}
	}
	return (j->pid > 0 ? 0 : -1);
}

// exec_close closes *fd if open.
static void
exec_close(int *fd)
{
	if (*fd >= 0) {
		close(*fd);
		*fd = -1;
	}
}

// exec_keep_tail appends n bytes of stderr, keeping only the last EXEC_TAIL.
static void
exec_keep_tail(exec_job *j, const char *buf, size_t n)
{
	if (n >= EXEC_TAIL) {
		memcpy(j->tail, buf + n - EXEC_TAIL, EXEC_TAIL);
		j->taillen = EXEC_TAIL;
		return;
	}
	if (j->taillen + n > EXEC_TAIL) {
		size_t drop = j->taillen + n - EXEC_TAIL;
		memmove(j->tail, j->tail + drop, j->taillen - drop);
		j->taillen -= drop;
	}
	memcpy(j->tail + j->taillen, buf, n);
	j->taillen += n;
}

// exec_keep_out appends n bytes of stdout; sets too_big past the cap.
static void
exec_keep_out(exec_job *j, const char *buf, size_t n)
{
	if (j->outlen + n > EXEC_STDOUT_MAX) {
		j->too_big = true;
		return;
	}
	if (j->outlen + n > j->outcap) {
		j->outcap = (j->outlen + n) * 2;
		j->outbuf = weft_xrealloc(j->outbuf, j->outcap);
	}
	memcpy(j->outbuf + j->outlen, buf, n);
	j->outlen += n;
}

// exec_read reads what is available on *fd (stdout when is_out) until it
// would block; closes *fd at end of file.
static void
exec_read(exec_job *j, int *fd, bool is_out)
{
	char    buf[65536];
	ssize_t n;

	while (*fd >= 0 && !j->too_big) {
		n = read(*fd, buf, sizeof(buf));
		if (n > 0) {
			if (is_out) {
				exec_keep_out(j, buf, (size_t) n);
			} else {
				exec_keep_tail(j, buf, (size_t) n);
			}
			continue;
		}
		if (n < 0 && errno == EINTR) {
			continue;
		}
		if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
			exec_close(fd);
		}
		return;
	}
}

// exec_read_progress reads the progress lines available (never waiting:
// the program must not block on them) and hands the newest good one to the
// attempt, at most every WORKER_PROGRESS_MIN_MS; the rest at the end
// (final). Returns how long until a waiting line may go (-1: none).
static int
exec_read_progress(exec_job *j, const weft_step_ctx *ctx, bool final)
{
	char    buf[16384];
	ssize_t n;
	json_t *v;
	int     wait_ms;

	while (j->prog >= 0) {
		n = read(j->prog, buf, sizeof(buf));
		if (n > 0) {
			worker_progress_feed(&j->progress, buf, (size_t) n);
			continue;
		}
		if (n < 0 && errno == EINTR) {
			continue;
		}
		if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
			exec_close(&j->prog);
		}
		break;
	}
	v = worker_progress_take(&j->progress, weft_clock_mono_ms(), final,
	    &wait_ms);
	if (v != NULL && worker_attempt_set_progress(ctx->att, v) != WEFT_OK) {
		j->progress.too_long++;
	}
	json_decref(v);
	return (wait_ms);
}

// exec_progress_report logs, once per attempt, the progress lines that
// were ignored: the program's author wants to know, the run does not.
static void
exec_progress_report(const exec_job *j, const weft_step_ctx *ctx)
{
	const worker_progress *p = &j->progress;

	if (p->too_long + p->not_utf8 == 0) {
		return;
	}
	weft_log_warn("EXEC-PROGRESS",
	    "run=%s step=%s attempt=%u ignored progress lines: too_long=%llu "
	    "(over %d bytes) not_utf8=%llu of lines=%llu (too_fast=%llu "
	    "replaced by newer)",
	    ctx->run_id, ctx->step_id, ctx->attempt,
	    (unsigned long long) p->too_long, WORKER_PROGRESS_LINE_MAX,
	    (unsigned long long) p->not_utf8, (unsigned long long) p->lines,
	    (unsigned long long) p->too_fast);
}

// exec_write_stdin writes what the pipe takes; closes stdin when done or
// when the child stopped reading (EPIPE; SIGPIPE is blocked meanwhile).
static void
exec_write_stdin(exec_job *j)
{
	ssize_t n;

	while (j->in >= 0 && j->stdin_off < j->stdin_len) {
		n = write(j->in, j->stdin_text + j->stdin_off,
		    j->stdin_len - j->stdin_off);
		if (n > 0) {
			j->stdin_off += (size_t) n;
		} else if (n < 0 && errno == EINTR) {
			continue;
		} else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			return;
		} else {
			break;
		}
	}
	exec_close(&j->in);
}

// exec_leader_exited reports whether the child has exited, without reaping
// it: while it is a zombie its pid (the group id) cannot be reused, so
// killpg stays safe.
static bool
exec_leader_exited(exec_job *j)
{
	siginfo_t si;

	memset(&si, 0, sizeof(si));
	if (waitid(P_PID, (id_t) j->pid, &si, WEXITED | WNOHANG | WNOWAIT) !=
	    0) {
		return (errno == ECHILD);
	}
	return (si.si_pid == j->pid);
}

// exec_poll_timeout returns the poll timeout in ms (-1: none), or 0 and
// sets timed_out when the deadline has passed.
static int
exec_poll_timeout(exec_job *j, const weft_step_ctx *ctx)
{
	int64_t rem;
	int     tmo = (j->pidfd < 0 || j->abortfd < 0) ? EXEC_SLICE : -1;

	if (ctx->deadline_ms <= 0) {
		return (tmo);
	}
	rem = ctx->deadline_ms - weft_clock_mono_ms();
	if (rem <= 0) {
		j->timed_out = true;
		return (0);
	}
	if (tmo < 0 || rem < tmo) {
		tmo = (int) (rem > INT_MAX ? INT_MAX : rem);
	}
	return (tmo);
}

// exec_pump moves data until the child exits, the deadline passes, the
// attempt is aborted or stdout grows too big. Kills the group on the way
// out, in every case, so no straggler keeps running.
static void
exec_pump(exec_job *j, const weft_step_ctx *ctx)
{
	struct pollfd pf[6];
	nfds_t        n;
	int           tmo;
	int           pwait = -1;

	for (;;) {
		if ((tmo = exec_poll_timeout(j, ctx)) == 0 && j->timed_out) {
			break;
		}
		if (pwait >= 0 && (tmo < 0 || pwait < tmo)) {
			tmo = pwait; // a progress line waits for its turn
		}
		n = 0;
		int *fds[] = { &j->in, &j->out, &j->err, &j->abortfd,
			&j->pidfd, &j->prog };
		for (int i = 0; i < 6; i++) {
			if (*fds[i] >= 0) {
				pf[n].fd      = *fds[i];
				pf[n].events  = i == 0 ? POLLOUT : POLLIN;
				pf[n].revents = 0;
				n++;
			}
		}
		if (poll(pf, n, tmo) < 0 && errno != EINTR) {
			break;
		}
		exec_write_stdin(j);
		exec_read(j, &j->out, true);
		exec_read(j, &j->err, false);
		pwait = exec_read_progress(j, ctx, false);
		if ((j->aborted = weft_step_aborted(ctx)) || j->too_big) {
			break;
		}
		if (exec_leader_exited(j)) {
			exec_read(j, &j->out, true);
			exec_read(j, &j->err, false);
			break;
		}
	}
	exec_read_progress(j, ctx, true);
	killpg(j->pid, SIGKILL);
	while (waitpid(j->pid, &j->status, 0) < 0 && errno == EINTR) {
	}
}

// exec_utf8_clean makes s (len bytes) valid UTF-8 for protobuf and JSON:
// partial sequences at the front (the tail cut them) and invalid bytes
// become '?'.
static void
exec_utf8_clean(unsigned char *s, size_t len)
{
	size_t i = 0;

	while (i < len) {
		size_t n = worker_utf8_len(s, i, len);
		if (n == 0) {
			s[i++] = '?';
			continue;
		}
		i += n;
	}
}

// exec_output parses stdout as the step's output (empty: null).
static int
exec_output(exec_job *j, json_t **output, char **error)
{
	json_error_t je;
	size_t       k = 0;

	while (k < j->outlen && strchr(" \t\r\n", j->outbuf[k]) != NULL) {
		k++;
	}
	if (k == j->outlen) {
		*output = json_null();
		return (0);
	}
	*output = json_loadb(j->outbuf, j->outlen, JSON_DECODE_ANY, &je);
	if (*output == NULL) {
		return (worker_step_error(
		    error, "exec: stdout is not JSON: %s", je.text));
	}
	return (0);
}

// exec_finish records exit code and stderr tail, and decides the outcome.
static int
exec_finish(exec_job *j, const weft_step_ctx *ctx, json_t **output,
    char **error)
{
	int code = 0;

	if (WIFEXITED(j->status)) {
		code = WEXITSTATUS(j->status);
	} else if (WIFSIGNALED(j->status)) {
		code = 128 + WTERMSIG(j->status);
	}
	exec_utf8_clean((unsigned char *) j->tail, j->taillen);
	j->tail[j->taillen] = '\0';
	weft_step_set_exec(ctx, code, j->tail);
	if (j->aborted) {
		return (worker_step_error(error, "exec: aborted"));
	}
	if (j->timed_out) {
		return (worker_step_error(
		    error, "exec: timed out after %u ms", ctx->timeout_ms));
	}
	if (j->too_big) {
		return (worker_step_error(error,
		    "exec: stdout is larger than %zu bytes", EXEC_STDOUT_MAX));
	}
	if (WIFSIGNALED(j->status)) {
		return (worker_step_error(error, "exec: killed by signal %d",
		    WTERMSIG(j->status)));
	}
	if (code != 0) {
		return (worker_step_error(error, "exec: exit code %d", code));
	}
	return (exec_output(j, output, error));
}

// exec_fini frees everything j owns and closes its descriptors.
static void
exec_fini(exec_job *j)
{
	exec_close(&j->in);
	exec_close(&j->out);
	exec_close(&j->err);
	exec_close(&j->pidfd);
	exec_close(&j->prog);
	for (size_t i = 0; j->envp != NULL && j->envp[i] != NULL; i++) {
		free(j->envp[i]);
	}
	free(j->envp);
	free(j->argv);
	free(j->path);
	free(j->stdin_text);
	free(j->outbuf);
}

// exec_sigpipe_block blocks SIGPIPE on this thread, so a child that stops
// reading its stdin gives EPIPE rather than killing the worker.
static void
exec_sigpipe_block(sigset_t *old)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &set, old);
}

// exec_sigpipe_restore discards a SIGPIPE our writes raised, then restores
// the mask.
static void
exec_sigpipe_restore(const sigset_t *old)
{
	sigset_t        set, pend;
	struct timespec zero = { 0, 0 };

	sigemptyset(&set);
	sigaddset(&set, SIGPIPE);
	if (!sigismember(old, SIGPIPE) && sigpending(&pend) == 0 &&
	    sigismember(&pend, SIGPIPE)) {
		sigtimedwait(&set, NULL, &zero);
	}
	pthread_sigmask(SIG_SETMASK, old, NULL);
}

int
weft_step_exec(void *arg, const weft_step_ctx *ctx, json_t *input,
    json_t **output, char **error)
{
	weft_worker *w = arg;
	exec_job     j;
	sigset_t     old;
	int          rc;

	memset(&j, 0, sizeof(j));
	j.in = j.out = j.err = j.pidfd = j.prog = -1;
	worker_progress_init(&j.progress);
	if ((rc = exec_argv(input, &j, error)) != 0 ||
	    (rc = exec_resolve(w, &j, j.argv[0], error)) != 0) {
		goto done;
	}
	exec_env(&j, ctx);
	j.stdin_text = weft_json_dump(input);
	j.stdin_len  = strlen(j.stdin_text);
	j.abortfd    = weft_step_abort_fd(ctx);
	exec_sigpipe_block(&old);
	if ((rc = exec_spawn(&j, error)) == 0) {
		// The program alive is the attempt's heartbeat.
		worker_attempt_auto_beat(ctx->att, true);
		exec_pump(&j, ctx);
		worker_attempt_auto_beat(ctx->att, false);
		exec_progress_report(&j, ctx);
		rc = exec_finish(&j, ctx, output, error);
	}
	exec_sigpipe_restore(&old);
done:
	exec_fini(&j);
	return (rc);
}
