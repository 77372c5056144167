// watchdog: says where a process is stuck when stopping takes too long.
//
// A stop that hangs is the hardest failure to explain afterwards: the
// process is killed and nothing says what it waited on. Once armed, the
// watchdog waits in a thread of its own; if it is not disarmed within the
// time given, it logs the phase the stop is in (STOP-SLOW) and every
// thread's stack (STOP-STACK lines, glibc's backtrace), and then leaves
// the process alone: whoever waits on it decides whether to kill it.
// The idea is redis's software watchdog, for the stop path.
//
// One part of a stop may be bounded as well (weft_watchdog_give_up): the
// teardown after everything is durable, which only frees what the exit
// frees too. nng 1.5.2 (Debian 12's) can hang closing a socket for good:
// its one reaper thread waits on a pipe's task that was prepared and
// never ran (nng issues #1543 and #1813, fixed in nng 1.9). A coordinator
// stuck there held its ports until it was killed.
#ifndef WEFT_WATCHDOG_H
#define WEFT_WATCHDOG_H

#include <stdint.h>

// weft_watchdog_init installs the handler that prints a thread's stack
// (SIGUSR2) and loads what backtrace() needs. Call it once, early.
void weft_watchdog_init(void);

// weft_watchdog_stack prints the calling thread's stack on stderr as one
// STOP-STACK block; async-signal-safe once weft_watchdog_init has run (a
// crash handler may call it).
void weft_watchdog_stack(void);

// weft_watchdog_arm starts watching: what names the process in the log,
// phase (a static string) says where it is; after after_ms without
// weft_watchdog_disarm the stacks are logged once.
void weft_watchdog_arm(const char *what, const char *phase, int64_t after_ms);

// weft_watchdog_phase says where the stop is now (a static string).
void weft_watchdog_phase(const char *phase);

// weft_watchdog_give_up bounds the rest of the stop: still armed after_ms
// from now, the watchdog logs the stacks (if not yet), then STOP-GIVE-UP,
// and ends the process with _exit(code). Call it only where what is left
// writes nothing that matters.
void weft_watchdog_give_up(int64_t after_ms, int code);

// weft_watchdog_disarm stops watching.
void weft_watchdog_disarm(void);

#endif
