// watchdog: the stacks of a stop that hangs (watchdog.h).
//
// _GNU_SOURCE: syscall(2), for gettid and tgkill (a signal to one thread
// of the process by its kernel id, as /proc/self/task lists them).
#define _GNU_SOURCE
#include "watchdog.h"

#include <dirent.h>
#include <errno.h>
#include <execinfo.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"

#define WATCHDOG_SIG SIGUSR2
#define WATCHDOG_DEPTH 48

static _Atomic(const char *) wd_phase = "";
static const char *wd_what            = "";
static int64_t     wd_after_ms;
static atomic_bool wd_armed;
static _Atomic(int64_t) wd_give_up_at; // monotonic ms; 0: never
static atomic_int       wd_give_up_code;
static int64_t          wd_give_up_ms; // as asked, for the log

// wd_num writes v in decimal into buf (async-signal-safe); returns length.
static size_t
wd_num(char *buf, long v)
{
	char   tmp[24];
	size_t n = 0, k = 0;

	if (v == 0) {
		tmp[n++] = '0';
	}
	while (v > 0 && n < sizeof(tmp)) {
		tmp[n++] = (char) ('0' + v % 10);
		v /= 10;
	}
	while (n > 0) {
		buf[k++] = tmp[--n];
	}
	return (k);
}

// wd_on_signal prints the stack of the thread it runs on: write(2) and
// backtrace_symbols_fd only (backtrace() was called once at init, so it
// has nothing left to load).
static void
wd_on_signal(int sig)
{
	void  *pc[WATCHDOG_DEPTH];
	char   head[64];
	size_t n = 0;
	int    depth, saved = errno;

	(void) sig;
	memcpy(head, "STOP-STACK tid=", 15);
	n = 15 + wd_num(head + 15, (long) syscall(SYS_gettid));
	head[n++] = '\n';
	depth     = backtrace(pc, WATCHDOG_DEPTH);
	if (write(STDERR_FILENO, head, n) < 0) {
		// nothing to do: stderr is gone
	}
	backtrace_symbols_fd(pc, depth, STDERR_FILENO);
	errno = saved;
}

void
weft_watchdog_stack(void)
{
	wd_on_signal(0);
}

void
weft_watchdog_init(void)
{
	struct sigaction sa;
	void            *pc[4];

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = wd_on_signal;
	sa.sa_flags   = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	sigaction(WATCHDOG_SIG, &sa, NULL);
	(void) backtrace(pc, 4); // loads libgcc's unwinder now, not in a handler
}

// wd_dump signals every thread of the process but the calling one, one at
// a time so that their stacks do not interleave.
static void
wd_dump(void)
{
	DIR           *d = opendir("/proc/self/task");
	struct dirent *de;
	pid_t          me = (pid_t) syscall(SYS_gettid);

	if (d == NULL) {
		return;
	}
	while ((de = readdir(d)) != NULL) {
		pid_t tid = (pid_t) atoi(de->d_name);
		if (tid <= 0 || tid == me) {
			continue;
		}
		syscall(SYS_tgkill, getpid(), tid, WATCHDOG_SIG);
		weft_clock_sleep_ms(20);
	}
	closedir(d);
}

static void
wd_slow(int64_t after_ms)
{
	weft_log_warn("STOP-SLOW",
	    "what=%s after_ms=%lld phase=\"%s\" still stopping; the stack of "
	    "every thread follows (STOP-STACK)", wd_what,
	    (long long) after_ms, atomic_load(&wd_phase));
	wd_dump();
}

static void *
wd_main(void *arg)
{
	int64_t armed   = weft_clock_mono_ms();
	int64_t slow_at = armed + wd_after_ms;
	bool    dumped  = false;

	(void) arg;
	while (atomic_load(&wd_armed)) {
		int64_t now     = weft_clock_mono_ms();
		int64_t give_up = atomic_load(&wd_give_up_at);

		if (!dumped && (now >= slow_at || (give_up > 0 && now >= give_up))) {
			wd_slow(now - armed);
			dumped = true;
			continue; // the dump took a while: still armed?
		}
		if (give_up > 0 && now >= give_up) {
			weft_log_warn("STOP-GIVE-UP",
			    "what=%s after_ms=%lld phase=\"%s\" what is left of "
			    "the stop only frees what the exit frees as well: "
			    "exiting now with status %d",
			    wd_what, (long long) wd_give_up_ms,
			    atomic_load(&wd_phase), atomic_load(&wd_give_up_code));
			_exit(atomic_load(&wd_give_up_code));
		}
		weft_clock_sleep_ms(20);
	}
	return (NULL);
}

void
weft_watchdog_arm(const char *what, const char *phase, int64_t after_ms)
{
	pthread_t      t;
	pthread_attr_t at;
	sigset_t       all, old;

	wd_what     = what;
	wd_after_ms = after_ms;
	atomic_store(&wd_give_up_at, 0);
	atomic_store(&wd_phase, phase);
	atomic_store(&wd_armed, true);
	// Blocks every signal in the watchdog: a stop signal is for the
	// threads that wait on one.
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	pthread_attr_init(&at);
	pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&t, &at, wd_main, NULL) != 0) {
		atomic_store(&wd_armed, false);
	}
	pthread_attr_destroy(&at);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
}

void
weft_watchdog_phase(const char *phase)
{
	atomic_store(&wd_phase, phase);
}

void
weft_watchdog_give_up(int64_t after_ms, int code)
{
	wd_give_up_ms = after_ms;
	atomic_store(&wd_give_up_code, code);
	atomic_store(&wd_give_up_at, weft_clock_mono_ms() + after_ms);
}

void
weft_watchdog_disarm(void)
{
	atomic_store(&wd_armed, false);
}
