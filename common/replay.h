// replay: which authenticated messages were already seen.
//
// Every node-to-node message carries (sender, incarnation, sequence, time).
// A receiver accepts a message once: it keeps, per sender and for a few of
// its recent incarnations, the highest sequence seen and a window of the
// REPLAY_WINDOW sequences below it. Older than the window, or a timestamp
// further than the allowed clock skew from ours, is refused too: a message
// recorded today cannot be played back tomorrow, and the state stays small.
//
// Only messages whose HMAC verified reach here, so only cookie holders can
// make entries; the table is bounded all the same.
#ifndef WEFT_REPLAY_H
#define WEFT_REPLAY_H

#include <pthread.h>
#include <stdint.h>

#include "map.h"

#define WEFT_REPLAY_WINDOW 1024 // sequences remembered below the highest
#define WEFT_REPLAY_INCS 4      // incarnations remembered per sender
#define WEFT_REPLAY_SENDERS 4096

typedef enum weft_replay_verdict {
	WEFT_REPLAY_OK,    // new: accepted and now remembered
	WEFT_REPLAY_SEEN,  // this (sender, incarnation, sequence) came before
	WEFT_REPLAY_OLD,   // below the window of its incarnation
	WEFT_REPLAY_SKEW,  // timestamp outside the allowed skew
} weft_replay_verdict;

typedef struct weft_replay {
	pthread_mutex_t lock;
	weft_map        senders; // name -> replay_sender
	int64_t         skew_ms;
} weft_replay;

void weft_replay_init(weft_replay *r, int64_t skew_ms);
void weft_replay_fini(weft_replay *r);

// weft_replay_check decides about one message and remembers it when new.
// Thread-safe.
weft_replay_verdict weft_replay_check(weft_replay *r, const char *sender,
    uint64_t incarnation, uint64_t seq, int64_t ts_ms, int64_t now_ms);

#endif
