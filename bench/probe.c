// probe: the machine's limits, measured in the same run as the workloads
// so the figures can be read against them: how long one durable write
// takes (4 KiB appended + fdatasync, what a commit needs at least) and one
// nng req/rep round trip over loopback TCP (what a step costs at least on
// the wire: the coordinator dispatches, the worker replies).
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alloc.h"
#include "bench.h"
#include "clock.h"

#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>

#define PROBE_BLOCK 4096     // bytes per durable write
#define PROBE_WARMUP 20      // round trips not counted (connection setup)
#define PROBE_MSG 64         // bytes per request and reply
#define PROBE_TIMEOUT_MS 5000 // any one send or receive

// probe_summary sorts v[n] and fills the p50/p99 of it.
static void
probe_summary(double *v, size_t n, double *p50, double *p99)
{
	bench_sort(v, n);
	*p50 = bench_rank(v, n, 50);
	*p99 = bench_rank(v, n, 99);
}

// probe_fsync appends n blocks to a new file in dir, each followed by
// fdatasync, and times each write + sync pair. SQLite's commit appends to
// its WAL and syncs it the same way.
static bool
probe_fsync(const char *dir, int n, bench_probe *p, char *err, size_t errlen)
{
	char    path[600], block[PROBE_BLOCK];
	double *v  = weft_xalloc((size_t) n * sizeof(*v));
	int     fd = -1;
	bool    ok = false;

	snprintf(path, sizeof(path), "%s/probe-fsync", dir);
	memset(block, 'w', sizeof(block));
	if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) <
	    0) {
		snprintf(err, errlen, "probe: open %s: %s", path,
		    strerror(errno));
		goto done;
	}
	for (int i = 0; i < n; i++) {
		int64_t t0 = weft_clock_mono_us();
		if (write(fd, block, sizeof(block)) != (ssize_t) sizeof(block) ||
		    fdatasync(fd) != 0) {
			snprintf(err, errlen, "probe: write+fdatasync %s: %s",
			    path, strerror(errno));
			goto done;
		}
		v[i] = (double) (weft_clock_mono_us() - t0);
	}
	probe_summary(v, (size_t) n, &p->fsync_p50_us, &p->fsync_p99_us);
	p->fsyncs = n;
	ok        = true;
done:
	if (fd >= 0) {
		close(fd);
		unlink(path);
	}
	free(v);
	return (ok);
}

// The rep side of the round trip probe: echoes every request until its
// socket is closed.
static void *
probe_echo_main(void *arg)
{
	nng_socket *rep = arg;
	nng_msg    *m;

	while (nng_recvmsg(*rep, &m, 0) == 0) {
		if (nng_sendmsg(*rep, m, 0) != 0) {
			nng_msg_free(m);
		}
	}
	return (NULL);
}

// probe_rtt times n req/rep round trips of small messages between two
// sockets of this process over tcp://127.0.0.1 (a free port).
static bool
probe_rtt(int n, bench_probe *p, char *err, size_t errlen)
{
	nng_socket   req = NNG_SOCKET_INITIALIZER, rep = NNG_SOCKET_INITIALIZER;
	nng_listener l;
	nng_sockaddr sa;
	pthread_t    echo;
	bool         echoing = false, ok = false;
	char         url[64], msg[PROBE_MSG];
	double      *v = weft_xalloc((size_t) n * sizeof(*v));
	int          rv;

	memset(msg, 'r', sizeof(msg));
	if ((rv = nng_rep0_open(&rep)) != 0 || (rv = nng_req0_open(&req)) != 0 ||
	    (rv = nng_listen(rep, "tcp://127.0.0.1:0", &l, 0)) != 0 ||
	    (rv = nng_listener_get_addr(l, NNG_OPT_LOCADDR, &sa)) != 0) {
		snprintf(err, errlen, "probe: rep socket on loopback: %s",
		    nng_strerror(rv));
		goto done;
	}
	snprintf(url, sizeof(url), "tcp://127.0.0.1:%u",
	    (unsigned) ntohs(sa.s_in.sa_port));
	nng_socket_set_ms(req, NNG_OPT_RECVTIMEO, PROBE_TIMEOUT_MS);
	nng_socket_set_ms(req, NNG_OPT_SENDTIMEO, PROBE_TIMEOUT_MS);
	if ((rv = nng_dial(req, url, NULL, 0)) != 0) {
		snprintf(err, errlen, "probe: dial %s: %s", url,
		    nng_strerror(rv));
		goto done;
	}
	if (pthread_create(&echo, NULL, probe_echo_main, &rep) != 0) {
		snprintf(err, errlen, "probe: no thread for the echo");
		goto done;
	}
	echoing = true;
	for (int i = -PROBE_WARMUP; i < n; i++) {
		int64_t t0 = weft_clock_mono_us();
		char   *back;
		size_t  len;
		if ((rv = nng_send(req, msg, sizeof(msg), 0)) != 0 ||
		    (rv = nng_recv(req, &back, &len, NNG_FLAG_ALLOC)) != 0) {
			snprintf(err, errlen, "probe: round trip %d on %s: %s",
			    i + PROBE_WARMUP + 1, url, nng_strerror(rv));
			goto done;
		}
		nng_free(back, len);
		if (i >= 0) {
			v[i] = (double) (weft_clock_mono_us() - t0);
		}
	}
	probe_summary(v, (size_t) n, &p->rtt_p50_us, &p->rtt_p99_us);
	p->round_trips = n;
	ok             = true;
done:
	nng_close(req);
	nng_close(rep); // ends the echo thread's receive
	if (echoing) {
		pthread_join(echo, NULL);
	}
	free(v);
	return (ok);
}

bool
bench_probe_run(const char *dir, int fsyncs, int round_trips, bench_probe *p,
    char *err, size_t errlen)
{
	memset(p, 0, sizeof(*p));
	if (!probe_fsync(dir, fsyncs, p, err, errlen) ||
	    !probe_rtt(round_trips, p, err, errlen)) {
		return (false);
	}
	p->limit_step_us = p->fsync_p50_us + 2.0 * p->rtt_p50_us;
	return (true);
}

json_t *
bench_probe_json(const bench_probe *p)
{
	return (json_pack("{s:i, s:f, s:f, s:i, s:f, s:f, s:f}", "fsyncs",
	    p->fsyncs, "fsync_p50_us", p->fsync_p50_us, "fsync_p99_us",
	    p->fsync_p99_us, "round_trips", p->round_trips, "rtt_p50_us",
	    p->rtt_p50_us, "rtt_p99_us", p->rtt_p99_us, "limit_step_us",
	    p->limit_step_us));
}

void
bench_probe_print(const bench_probe *p)
{
	printf("probe: fsync (4 KiB append + fdatasync, %d times) p50 %.0f us, "
	       "p99 %.0f us; nng req/rep round trip over tcp://127.0.0.1 "
	       "(%d times) p50 %.0f us, p99 %.0f us;\n       one fsync + "
	       "two round trips = %.0f us (the floor of one chained step)\n",
	    p->fsyncs, p->fsync_p50_us, p->fsync_p99_us, p->round_trips,
	    p->rtt_p50_us, p->rtt_p99_us, p->limit_step_us);
	fflush(stdout);
}
