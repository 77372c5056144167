// harness: helpers for end-to-end tests: free ports, temp dirs, child
// processes (the real binaries), and waiting on a condition with a deadline.
#ifndef WEFT_HARNESS_H
#define WEFT_HARNESS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

// weft_h_timeout_ms scales ms by WEFT_TEST_TIMEOUT_MULTIPLIER.
int64_t weft_h_timeout_ms(int64_t ms);

// weft_h_free_port returns a TCP port on 127.0.0.1 that was free just now
// and is released again: only for an address that must have nobody behind
// it. Servers under test bind port 0 and report what they got.
int weft_h_free_port(void);

// weft_h_listen_port returns a port on 127.0.0.1 that was free just now,
// below the kernel's ephemeral range, for a server that will stop and
// listen on it again: no outgoing connection takes such a port meanwhile.
int weft_h_listen_port(void);

// weft_h_ports: the addresses a coordinator bound, as it wrote them to its
// --ports-file once every socket was up (port 0 resolved).
typedef struct {
	char control[64], cluster[64], results[64], events[64], http[64];
} weft_h_ports;

// weft_h_read_ports reads a --ports-file into p: 0 when read, -1 while the
// file is not there (or not whole) yet, 1 when it lacks an address.
int weft_h_read_ports(const char *path, weft_h_ports *p);

// weft_h_connect opens a TCP connection to 127.0.0.1 at the port of
// hostport ("HOST:PORT", e.g. an --http address): the descriptor, or -1.
int weft_h_connect(const char *hostport);

// weft_h_group returns the test's process group, starting its keeper on
// first use. Every process weft_h_spawn and weft_h_run start joins it, and
// the keeper kills the whole group with SIGKILL as soon as the test
// process ends, however it ends (pass, failed assertion, crash, timeout).
pid_t weft_h_group(void);

// weft_h_group_end kills the test's group now (the end of a test that
// goes on in the same process). Safe to call when there is none.
void weft_h_group_end(void);

// weft_h_tempdir creates a fresh directory and returns its path (static
// storage per call is not shared: the result is malloc'd; free()). It is
// removed with what it holds when the process that made it exits (kept
// with WEFT_TEST_KEEP set). weft_h_tempdir_kept makes one that its caller
// removes (a database server's, stopped after we exit).
char *weft_h_tempdir(const char *tag);
char *weft_h_tempdir_kept(const char *tag);

// weft_h_spawn starts argv (argv[0] may be a bare binary name under the
// build tree, e.g. "weft-coordinator") with stdout/stderr to logfile, and
// returns its pid. Aborts the test on failure.
pid_t weft_h_spawn(char *const argv[], const char *logfile);

// weft_h_kill sends sig to pid and reaps it (SIGKILL after 5 s for TERM).
void weft_h_kill(pid_t pid, int sig);

// weft_h_term stops pid with SIGTERM and waits up to limit_ms (scaled by
// weft_h_timeout_ms) for it to exit on its own. Returns its exit status
// (128 + the signal if one ended it), or -1 when it had to be killed.
int weft_h_term(pid_t pid, int64_t limit_ms);

// weft_h_alive reports whether pid is still running (reaps if not).
bool weft_h_alive(pid_t pid);

// weft_h_run runs a shell command, captures its stdout (malloc'd into *out
// when out is not NULL), and returns its exit status (or -1).
int weft_h_run(const char *cmd, char **out);

// weft_h_run_fmt is weft_h_run with a printf-style command.
int weft_h_run_fmt(char **out, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

// weft_h_bin returns the path of a built binary ("weft", "weft-worker", ...)
// in static storage.
const char *weft_h_bin(const char *name);

#endif
