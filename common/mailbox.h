// mailbox: a many-producer, one-consumer queue of intrusive nodes with a
// timed wait. nng callbacks post; the engine thread drains.
#ifndef WEFT_MAILBOX_H
#define WEFT_MAILBOX_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "queue.h"

// Embed as the first member of whatever you post. A drained chain is walked
// through next, oldest first, and ends with NULL.
typedef weft_qnode weft_mail;

typedef struct weft_mailbox {
	pthread_mutex_t lock;
	pthread_cond_t  cv;      // mail posted or closed (monotonic clock)
	weft_queue      mail;    // oldest first
	uint64_t        posted;  // messages posted since init
	bool            closed;
} weft_mailbox;

// weft_mailbox_init prepares mb (caller's storage).
void weft_mailbox_init(weft_mailbox *mb);

// weft_mailbox_fini frees nothing it does not own: the caller drains first.
void weft_mailbox_fini(weft_mailbox *mb);

// weft_mailbox_post appends m (taken until drained). Any thread; never
// blocks beyond a short lock, so it is safe in nng callbacks.
void weft_mailbox_post(weft_mailbox *mb, weft_mail *m);

// weft_mailbox_drain waits up to timeout_ms (0: do not wait, <0: forever)
// for mail, then returns every queued message oldest first (NULL if none).
// The caller owns the returned chain. Closing wakes the waiter.
weft_mail *weft_mailbox_drain(weft_mailbox *mb, int64_t timeout_ms);

// weft_mailbox_close wakes the consumer; later drains do not wait.
void weft_mailbox_close(weft_mailbox *mb);

#endif
