// replay: which authenticated messages were already seen.
//
// Every node-to-node message carries (sender, incarnation, sequence, time);
// the incarnation is bound to the sender's signing key (wire.h), so no
// other node can speak in it. A receiver accepts a message once: per
// (sender, incarnation) it keeps the highest sequence seen and a window of
// the WEFT_REPLAY_WINDOW sequences below it. Older than the window, or a
// timestamp further than the allowed clock skew from ours, is refused too:
// a message recorded today cannot be played back tomorrow, and the state
// stays small.
//
// The table is bounded. When a (sender, incarnation) has to make room, the
// latest timestamp it accepted (capped at our clock then) becomes a floor:
// a (sender, incarnation) we do not know is accepted only with later
// timestamps, so a forgotten one cannot be replayed into a fresh window.
#ifndef WEFT_REPLAY_H
#define WEFT_REPLAY_H

#include <pthread.h>
#include <stdint.h>

#include "map.h"

#define WEFT_REPLAY_WINDOW 1024 // sequences remembered below the highest
#define WEFT_REPLAY_ENTRIES 4096 // (sender, incarnation) pairs remembered

typedef enum weft_replay_verdict {
	WEFT_REPLAY_OK,    // new: accepted and now remembered
	WEFT_REPLAY_SEEN,  // this (sender, incarnation, sequence) came before
	WEFT_REPLAY_OLD,   // below the window, or older than the floor
	WEFT_REPLAY_SKEW,  // timestamp outside the allowed skew
} weft_replay_verdict;

typedef struct weft_replay {
	pthread_mutex_t lock;
	weft_map        entries; // "sender/incarnation" -> replay_entry
	int64_t         skew_ms;
	int64_t         floor_ts; // see above
} weft_replay;

void weft_replay_init(weft_replay *r, int64_t skew_ms);
void weft_replay_fini(weft_replay *r);

// weft_replay_check decides about one message and remembers it when new.
// Thread-safe.
weft_replay_verdict weft_replay_check(weft_replay *r, const char *sender,
    uint64_t incarnation, uint64_t seq, int64_t ts_ms, int64_t now_ms);

#endif
