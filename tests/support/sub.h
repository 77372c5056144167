// sub: a raw subscriber of a coordinator's event stream, on its own
// thread, for tests that look at exactly what was published.
#ifndef WEFT_TEST_SUB_H
#define WEFT_TEST_SUB_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include <nng/nng.h>

// weft_sub_fn gets every message received (borrowed), on the sub thread.
typedef void (*weft_sub_fn)(void *arg, nng_msg *msg);

typedef struct weft_sub {
	nng_socket  sock;
	pthread_t   thread;
	atomic_bool stop;
	weft_sub_fn fn;
	void       *arg;
} weft_sub;

// weft_sub_start subscribes to everything published at url (dialled,
// redialled within 200 ms when the coordinator restarts) and hands each
// message to fn until weft_sub_stop.
void weft_sub_start(weft_sub *s, const char *url, weft_sub_fn fn, void *arg);

// weft_sub_stop stops the thread (fn is not called after it returns) and
// closes the socket.
void weft_sub_stop(weft_sub *s);

#endif
