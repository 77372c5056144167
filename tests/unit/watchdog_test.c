// watchdog_test: a stop that does not end in time logs its phase and the
// stack of every other thread, once; one disarmed in time logs nothing. A
// bounded teardown that overruns ends the process with the status given;
// one that ends in time goes on.
#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "log.h"
#include "watchdog.h"

static pthread_mutex_t stuck_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t  stuck_cv   = PTHREAD_COND_INITIALIZER;
static int             release;

// stuck waits until released: the thread a hung stop would wait on.
static void *
stuck(void *arg)
{
	(void) arg;
	pthread_mutex_lock(&stuck_lock);
	while (!release) {
		pthread_cond_wait(&stuck_cv, &stuck_lock);
	}
	pthread_mutex_unlock(&stuck_lock);
	return (NULL);
}

// nap sleeps ms even when a signal cuts a sleep short (the watchdog's
// does, on this thread too).
static void
nap(int64_t ms)
{
	int64_t until = weft_clock_mono_ms() + ms;

	while (weft_clock_mono_ms() < until) {
		weft_clock_sleep_ms(10);
	}
}

// captured returns what the test wrote to stderr (malloc'd).
static char *
captured(void)
{
	FILE  *f = cr_get_redirected_stderr();
	char  *buf = calloc(1, 1 << 20);
	size_t n   = 0, r;

	fflush(stderr);
	while ((r = fread(buf + n, 1, (1 << 20) - 1 - n, f)) > 0) {
		n += r;
	}
	return (buf);
}

static size_t
count(const char *s, const char *what)
{
	size_t n = 0;

	while ((s = strstr(s, what)) != NULL) {
		n++;
		s += strlen(what);
	}
	return (n);
}

static void
setup(void)
{
	cr_redirect_stderr();
	weft_log_init("watchdog-test", WEFT_LOG_INFO);
	weft_watchdog_init();
}

TestSuite(watchdog, .init = setup, .timeout = 30);

Test(watchdog, a_slow_stop_logs_its_phase_and_every_stack)
{
	pthread_t t;
	char     *out;

	cr_assert_eq(pthread_create(&t, NULL, stuck, NULL), 0);
	weft_watchdog_arm("test-proc", "first phase", 200);
	weft_watchdog_phase("server close");
	nap(1500);
	pthread_mutex_lock(&stuck_lock);
	release = 1;
	pthread_cond_broadcast(&stuck_cv);
	pthread_mutex_unlock(&stuck_lock);
	pthread_join(t, NULL);
	out = captured();
	cr_expect_eq(count(out, "STOP-SLOW"), 1, "%s", out);
	cr_expect_neq(strstr(out, "phase=\"server close\""), NULL, "%s", out);
	cr_expect_neq(strstr(out, "test-proc"), NULL, "%s", out);
	// This thread and the stuck one; not the watchdog's own.
	cr_expect_geq(count(out, "STOP-STACK tid="), 2, "%s", out);
	cr_expect_neq(strstr(out, "pthread_cond_wait"), NULL,
	    "the stuck thread's stack names what it waits in:\n%s", out);
	weft_watchdog_disarm();
	free(out);
}

Test(watchdog, a_stop_in_time_logs_nothing)
{
	char *out;

	weft_watchdog_arm("test-proc", "engine stop", 400);
	nap(100);
	weft_watchdog_disarm();
	nap(700);
	out = captured();
	cr_expect_eq(strstr(out, "STOP-"), NULL, "%s", out);
	free(out);
}

// The teardown hangs (a thread the stop waits on never lets go, as nng
// 1.5.2's reaper can): the watchdog ends the process with the status the
// stop asked for, 7 here. Were the bound ignored, the test would return
// and the process exit 0.
Test(watchdog, a_teardown_past_its_bound_ends_the_process, .exit_code = 7)
{
	pthread_t t;

	cr_assert_eq(pthread_create(&t, NULL, stuck, NULL), 0);
	weft_watchdog_arm("test-proc", "engine stop", 10000);
	weft_watchdog_phase("server close");
	weft_watchdog_give_up(200, 7);
	nap(5000);
	cr_assert_fail("still running 5 s after a 200 ms bound");
}

Test(watchdog, a_teardown_in_time_goes_on)
{
	char *out;

	weft_watchdog_arm("test-proc", "engine stop", 10000);
	weft_watchdog_give_up(300, 7);
	nap(50);
	weft_watchdog_disarm();
	nap(700);
	out = captured();
	cr_expect_eq(strstr(out, "STOP-"), NULL, "%s", out);
	free(out);
}
