// pgcut: a relay that can lose a COMMIT's answer (pgcut.h).
//
// Two threads per connection, one per direction, each a blocking read
// and write: a relay that waited on one side while the other filled up
// would deadlock a pipelined client. The client-to-server thread reads
// the messages; when it finds the COMMIT to cut it marks the connection
// before forwarding it, so the server's answer, which can only come after,
// is never forwarded: the server-to-client thread keeps it back, waits
// for the COMMIT's CommandComplete and shuts both sockets.
#define _GNU_SOURCE // memmem
#include "pgcut.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "alloc.h"
#include "clock.h"
#include "harness.h"

#define PGCUT_CONNS 64
// The startup packet's codes that are not a startup (pgcut.c reads on).
#define PGCUT_SSL     80877103u
#define PGCUT_GSSENC  80877104u

typedef struct pgcut_conn {
	weft_pgcut *relay;
	int         cfd, sfd;
	atomic_bool cutting; // its COMMIT went to the server: keep its answer
	pthread_t   up, down; // client to server, server to client
	bool        started;
} pgcut_conn;

struct weft_pgcut {
	char            dir[256];
	char            server[300]; // the server's socket
	int             port;        // names our socket, as the server's
	int             lfd;
	pthread_t       acceptor;
	pthread_mutex_t mu;
	char            needle[128]; // armed when not ""
	int             fired;
	int             nconns;
	pgcut_conn      conns[PGCUT_CONNS];
	atomic_bool     stopping;
};

static int
pgcut_unix(const char *path, bool listen_on)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int                fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0 || strlen(path) >= sizeof(a.sun_path)) {
		if (fd >= 0) {
			close(fd);
		}
		return (-1);
	}
	memcpy(a.sun_path, path, strlen(path) + 1);
	if (listen_on ? bind(fd, (struct sockaddr *) &a, sizeof(a)) != 0 ||
	            listen(fd, 16) != 0
	              : connect(fd, (struct sockaddr *) &a, sizeof(a)) != 0) {
		close(fd);
		return (-1);
	}
	return (fd);
}

static bool
pgcut_write(int fd, const char *p, size_t n)
{
	while (n > 0) {
		// send: a peer gone raises EPIPE here, not SIGPIPE in the test.
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR) {
			continue;
		}
		if (w <= 0) {
			return (false);
		}
		p += w;
		n -= (size_t) w;
	}
	return (true);
}

static uint32_t
pgcut_u32(const char *p)
{
	const unsigned char *u = (const unsigned char *) p;
	return ((uint32_t) u[0] << 24 | (uint32_t) u[1] << 16 |
	    (uint32_t) u[2] << 8 | u[3]);
}

// pgcut_query returns the SQL text of message (type, body, n), a simple
// query ('Q') or a Parse ('P': statement name, then the text), or NULL.
static const char *
pgcut_query(char type, const char *body, size_t n)
{
	const char *z;

	if (n == 0 || body[n - 1] != '\0') {
		return (NULL);
	}
	if (type == 'Q') {
		return (body);
	}
	if (type == 'P' && (z = memchr(body, '\0', n)) != NULL &&
	    (size_t) (z + 1 - body) < n) {
		return (z + 1);
	}
	return (NULL);
}

// pgcut_up relays the client's bytes to the server, reading its messages
// to find the COMMIT of the transaction to cut.
static void *
pgcut_up(void *arg)
{
	pgcut_conn *c      = arg;
	weft_pgcut *r      = c->relay;
	char       *buf    = NULL;
	size_t      n      = 0, cap = 0;
	bool        typed  = false; // past the startup packet
	bool        marked = false; // this transaction carries the needle

	for (;;) {
		if (cap - n < 65536) {
			cap = cap * 2 + 65536;
			buf = weft_xrealloc(buf, cap);
		}
		ssize_t got = read(c->cfd, buf + n, cap - n);
		if (got < 0 && errno == EINTR) {
			continue;
		}
		if (got <= 0) {
			break;
		}
		size_t chunk = (size_t) got, off = 0;
		n += chunk;
		// Read every whole message first: a COMMIT to cut marks the
		// connection before any of its bytes reach the server.
		for (;;) {
			size_t      len;
			char        type;
			const char *body;
			if (!typed) {
				if (n - off < 8) {
					break;
				}
				len = pgcut_u32(buf + off);
				if (len < 8 || n - off < len) {
					break;
				}
				uint32_t code = pgcut_u32(buf + off + 4);
				typed = code != PGCUT_SSL && code != PGCUT_GSSENC;
				off += len;
				continue;
			}
			if (n - off < 5) {
				break;
			}
			type = buf[off];
			len  = pgcut_u32(buf + off + 1);
			if (len < 4 || n - off < len + 1) {
				break;
			}
			body = buf + off + 5;
			pthread_mutex_lock(&r->mu);
			if (r->needle[0] != '\0' && !marked &&
			    memmem(body, len - 4, r->needle, strlen(r->needle)) !=
			        NULL) {
				marked = true;
			}
			const char *q = pgcut_query(type, body, len - 4);
			if (q != NULL && (strcasecmp(q, "COMMIT") == 0 ||
			                     strcasecmp(q, "ROLLBACK") == 0)) {
				if (marked && r->needle[0] != '\0' &&
				    strcasecmp(q, "COMMIT") == 0) {
					r->needle[0] = '\0';
					r->fired++;
					atomic_store(&c->cutting, true);
				}
				marked = false;
			}
			pthread_mutex_unlock(&r->mu);
			off += len + 1;
		}
		if (!pgcut_write(c->sfd, buf + n - chunk, chunk)) {
			break;
		}
		memmove(buf, buf + off, n - off);
		n -= off;
	}
	free(buf);
	shutdown(c->sfd, SHUT_WR);
	return (NULL);
}

// pgcut_down relays the server's bytes to the client, until the
// connection is cut: then it keeps them, and once the COMMIT's
// CommandComplete came (or 5 s passed), shuts both sockets.
static void *
pgcut_down(void *arg)
{
	static const char done[] = "COMMIT"; // CommandComplete's tag, then NUL
	pgcut_conn       *c      = arg;
	char              buf[65536 + 8];
	size_t            keep   = 0; // the last bytes kept, for a split tag
	int64_t           until  = 0;

	for (;;) {
		if (atomic_load(&c->cutting) && until == 0) {
			until = weft_clock_mono_ms() + 5000;
		}
		if (until != 0) {
			struct pollfd p = { .fd = c->sfd, .events = POLLIN };
			int64_t       left = until - weft_clock_mono_ms();
			if (left <= 0 || poll(&p, 1, (int) left) <= 0) {
				break; // no answer: cut all the same
			}
		}
		ssize_t got = read(c->sfd, buf + keep, sizeof(buf) - 8 - keep);
		if (got < 0 && errno == EINTR) {
			continue;
		}
		if (got <= 0) {
			break;
		}
		if (!atomic_load(&c->cutting)) {
			if (!pgcut_write(c->cfd, buf, (size_t) got)) {
				break;
			}
			continue;
		}
		size_t n = keep + (size_t) got;
		if (memmem(buf, n, done, sizeof(done)) != NULL) {
			break; // committed, and the client never hears it
		}
		keep = n < 7 ? n : 7;
		memmove(buf, buf + n - keep, keep);
	}
	shutdown(c->cfd, SHUT_RDWR);
	shutdown(c->sfd, SHUT_RDWR);
	return (NULL);
}

static void *
pgcut_accept(void *arg)
{
	weft_pgcut *r = arg;

	for (;;) {
		int cfd = accept4(r->lfd, NULL, NULL, SOCK_CLOEXEC);
		if (cfd < 0) {
			if (errno == EINTR || errno == ECONNABORTED) {
				continue;
			}
			break;
		}
		if (atomic_load(&r->stopping)) {
			close(cfd);
			break;
		}
		int sfd = pgcut_unix(r->server, false);
		pthread_mutex_lock(&r->mu);
		if (sfd < 0 || r->nconns == PGCUT_CONNS) {
			pthread_mutex_unlock(&r->mu);
			close(cfd);
			if (sfd >= 0) {
				close(sfd);
			}
			continue;
		}
		pgcut_conn *c = &r->conns[r->nconns++];
		c->relay      = r;
		c->cfd        = cfd;
		c->sfd        = sfd;
		atomic_init(&c->cutting, false);
		c->started = pthread_create(&c->up, NULL, pgcut_up, c) == 0;
		if (c->started &&
		    pthread_create(&c->down, NULL, pgcut_down, c) != 0) {
			abort();
		}
		pthread_mutex_unlock(&r->mu);
	}
	return (NULL);
}

weft_pgcut *
weft_pgcut_start(const weft_pg *pg, const char *db, char *url, size_t len)
{
	weft_pgcut *r   = weft_xalloc(sizeof(*r));
	char       *dir = weft_h_tempdir("pgcut");
	char        path[400];

	memset(r, 0, sizeof(*r));
	snprintf(r->dir, sizeof(r->dir), "%s", dir);
	free(dir);
	snprintf(r->server, sizeof(r->server), "%s/sock/.s.PGSQL.%d", pg->dir,
	    pg->port);
	r->port = pg->port;
	snprintf(path, sizeof(path), "%s/.s.PGSQL.%d", r->dir, r->port);
	pthread_mutex_init(&r->mu, NULL);
	atomic_init(&r->stopping, false);
	if ((r->lfd = pgcut_unix(path, true)) < 0) {
		fprintf(stderr, "pgcut: cannot listen on %s: %s\n", path,
		    strerror(errno));
		weft_h_run_fmt(NULL, "rm -rf '%s'", r->dir);
		free(r);
		return (NULL);
	}
	if (pthread_create(&r->acceptor, NULL, pgcut_accept, r) != 0) {
		abort();
	}
	snprintf(url, len, "postgres://weft@/%s?host=%s&port=%d", db, r->dir,
	    pg->port);
	return (r);
}

void
weft_pgcut_arm(weft_pgcut *r, const char *needle)
{
	pthread_mutex_lock(&r->mu);
	snprintf(r->needle, sizeof(r->needle), "%s", needle);
	pthread_mutex_unlock(&r->mu);
}

int
weft_pgcut_fired(weft_pgcut *r)
{
	int n;

	pthread_mutex_lock(&r->mu);
	n = r->fired;
	pthread_mutex_unlock(&r->mu);
	return (n);
}

void
weft_pgcut_stop(weft_pgcut *r)
{
	char path[400];

	if (r == NULL) {
		return;
	}
	// The acceptor sees stopping on the next connection: this one.
	atomic_store(&r->stopping, true);
	snprintf(path, sizeof(path), "%s/.s.PGSQL.%d", r->dir, r->port);
	int wake = pgcut_unix(path, false);
	pthread_join(r->acceptor, NULL);
	if (wake >= 0) {
		close(wake);
	}
	close(r->lfd);
	for (int k = 0; k < r->nconns; k++) {
		pgcut_conn *c = &r->conns[k];
		shutdown(c->cfd, SHUT_RDWR);
		shutdown(c->sfd, SHUT_RDWR);
		if (c->started) {
			pthread_join(c->up, NULL);
			pthread_join(c->down, NULL);
		}
		close(c->cfd);
		close(c->sfd);
	}
	pthread_mutex_destroy(&r->mu);
	weft_h_run_fmt(NULL, "rm -rf '%s'", r->dir);
	free(r);
}
