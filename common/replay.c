// replay: a sliding window of seen sequences per sender incarnation.
#include "replay.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"

#define REPLAY_WORDS (WEFT_REPLAY_WINDOW / 64)

typedef struct replay_entry {
	uint64_t top;                // highest sequence seen
	uint64_t bits[REPLAY_WORDS]; // bit (top - seq) set = seen
	int64_t  last_ms;            // our clock when last accepted
	int64_t  max_ts;             // latest timestamp accepted
} replay_entry;

void
weft_replay_init(weft_replay *r, int64_t skew_ms)
{
	pthread_mutex_init(&r->lock, NULL);
	weft_map_init(&r->entries);
	r->skew_ms  = skew_ms;
	r->floor_ts = 0;
}

void
weft_replay_fini(weft_replay *r)
{
	const char *k;
	void       *v;

	for (size_t i = 0; weft_map_each(&r->entries, &i, &k, &v);) {
		free(v);
	}
	weft_map_fini(&r->entries);
	pthread_mutex_destroy(&r->lock);
}

// replay_shift moves the window up by n sequences: distance d (bit d % 64
// of word d / 64; 0 is the top) becomes d + n, and what passes the end of
// the window is forgotten.
static void
replay_shift(replay_entry *re, uint64_t n)
{
	uint64_t ws = n / 64, bs = n % 64;

	if (n >= WEFT_REPLAY_WINDOW) {
		memset(re->bits, 0, sizeof(re->bits));
		return;
	}
	for (size_t w = REPLAY_WORDS; w-- > 0;) {
		uint64_t v = 0;
		if (w >= ws) {
			v = re->bits[w - ws] << bs;
			if (bs > 0 && w > ws) {
				v |= re->bits[w - ws - 1] >> (64 - bs);
			}
		}
		re->bits[w] = v;
	}
}

// replay_evict makes room: the entry heard from longest ago goes, and its
// latest timestamp (no later than now) raises the floor.
static void
replay_evict(weft_replay *r, int64_t now_ms)
{
	const char   *k, *oldest = NULL;
	void         *v;
	replay_entry *victim = NULL;

	for (size_t i = 0; weft_map_each(&r->entries, &i, &k, &v);) {
		replay_entry *e = v;
		if (victim == NULL || e->last_ms < victim->last_ms) {
			victim = e;
			oldest = k;
		}
	}
	if (victim == NULL) {
		return;
	}
	int64_t ts = victim->max_ts < now_ms ? victim->max_ts : now_ms;
	if (ts > r->floor_ts) {
		r->floor_ts = ts;
	}
	free(weft_map_del(&r->entries, oldest));
}

weft_replay_verdict
weft_replay_check(weft_replay *r, const char *sender, uint64_t incarnation,
    uint64_t seq, int64_t ts_ms, int64_t now_ms)
{
	replay_entry       *re;
	weft_replay_verdict v = WEFT_REPLAY_OK;
	char                key[200];

	if (ts_ms > now_ms + r->skew_ms || ts_ms < now_ms - r->skew_ms) {
		return (WEFT_REPLAY_SKEW);
	}
	if (incarnation == 0 || seq == 0) {
		return (WEFT_REPLAY_OLD); // never sent by weft_wire_pack
	}
	snprintf(key, sizeof(key), "%.160s/%016" PRIx64, sender, incarnation);
	pthread_mutex_lock(&r->lock);
	if ((re = weft_map_get(&r->entries, key)) == NULL) {
		if (ts_ms <= r->floor_ts) {
			pthread_mutex_unlock(&r->lock);
			return (WEFT_REPLAY_OLD);
		}
		if (r->entries.count >= WEFT_REPLAY_ENTRIES) {
			replay_evict(r, now_ms);
		}
		re = weft_xalloc(sizeof(*re));
		weft_map_put(&r->entries, key, re);
	}
	if (re->top == 0 || seq > re->top) {
		replay_shift(re, re->top == 0 ? WEFT_REPLAY_WINDOW : seq - re->top);
		re->top = seq;
		re->bits[0] |= 1;
	} else if (re->top - seq >= WEFT_REPLAY_WINDOW) {
		v = WEFT_REPLAY_OLD;
	} else {
		uint64_t d = re->top - seq;
		if (re->bits[d / 64] & (1ull << (d % 64))) {
			v = WEFT_REPLAY_SEEN;
		} else {
			re->bits[d / 64] |= 1ull << (d % 64);
		}
	}
	if (v == WEFT_REPLAY_OK) {
		re->last_ms = now_ms;
		if (ts_ms > re->max_ts) {
			re->max_ts = ts_ms;
		}
	}
	pthread_mutex_unlock(&r->lock);
	return (v);
}
