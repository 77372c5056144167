// replay: a sliding window of seen sequences per sender incarnation.
#include "replay.h"

#include <stdlib.h>
#include <string.h>

#include "alloc.h"

#define REPLAY_WORDS (WEFT_REPLAY_WINDOW / 64)

typedef struct replay_inc {
	uint64_t inc;     // 0 = unused slot
	uint64_t top;     // highest sequence seen
	uint64_t bits[REPLAY_WORDS]; // bit (top - seq) set = seen
	int64_t  last_ms; // our clock when last accepted
	int64_t  max_ts;  // latest timestamp accepted from it
} replay_inc;

typedef struct replay_sender {
	replay_inc incs[WEFT_REPLAY_INCS];
	int64_t    last_ms;
	// Latest timestamp of any incarnation that lost its slot: an
	// incarnation we do not know is accepted only with later timestamps,
	// so a forgotten one cannot be replayed into a fresh window.
	int64_t floor_ts;
} replay_sender;

void
weft_replay_init(weft_replay *r, int64_t skew_ms)
{
	pthread_mutex_init(&r->lock, NULL);
	weft_map_init(&r->senders);
	r->skew_ms = skew_ms;
}

void
weft_replay_fini(weft_replay *r)
{
	const char *k;
	void       *v;

	for (size_t i = 0; weft_map_each(&r->senders, &i, &k, &v);) {
		free(v);
	}
	weft_map_fini(&r->senders);
	pthread_mutex_destroy(&r->lock);
}

// replay_shift moves the window up by n sequences: distance d (bit d % 64
// of word d / 64; 0 is the top) becomes d + n, and what passes the end of
// the window is forgotten.
static void
replay_shift(replay_inc *ri, uint64_t n)
{
	uint64_t ws = n / 64, bs = n % 64;

	if (n >= WEFT_REPLAY_WINDOW) {
		memset(ri->bits, 0, sizeof(ri->bits));
		return;
	}
	for (size_t w = REPLAY_WORDS; w-- > 0;) {
		uint64_t v = 0;
		if (w >= ws) {
			v = ri->bits[w - ws] << bs;
			if (bs > 0 && w > ws) {
				v |= ri->bits[w - ws - 1] >> (64 - bs);
			}
		}
		ri->bits[w] = v;
	}
}

// replay_sender_get finds or makes the entry of sender; when the table is
// full the sender heard from longest ago makes room.
static replay_sender *
replay_sender_get(weft_replay *r, const char *sender, int64_t now_ms)
{
	replay_sender *s = weft_map_get(&r->senders, sender);
	const char    *k, *oldest = NULL;
	void          *v;
	int64_t        oldest_ms = 0;

	if (s != NULL) {
		return (s);
	}
	if (r->senders.count >= WEFT_REPLAY_SENDERS) {
		for (size_t i = 0; weft_map_each(&r->senders, &i, &k, &v);) {
			replay_sender *o = v;
			if (oldest == NULL || o->last_ms < oldest_ms) {
				oldest    = k;
				oldest_ms = o->last_ms;
			}
		}
		free(weft_map_del(&r->senders, oldest));
	}
	s = weft_xalloc(sizeof(*s));
	s->last_ms = now_ms;
	weft_map_put(&r->senders, sender, s);
	return (s);
}

// replay_inc_get finds the slot of incarnation inc, or takes a free one,
// or the one heard from longest ago; NULL when inc is unknown and ts is not
// past the sender's floor.
static replay_inc *
replay_inc_get(replay_sender *s, uint64_t inc, int64_t ts_ms)
{
	replay_inc *victim = NULL;

	for (int i = 0; i < WEFT_REPLAY_INCS; i++) {
		replay_inc *ri = &s->incs[i];
		if (ri->inc == inc) {
			return (ri);
		}
		if (ri->inc == 0) {
			if (victim == NULL || victim->inc != 0) {
				victim = ri; // a free slot beats any used one
			}
		} else if (victim == NULL ||
		    (victim->inc != 0 && ri->last_ms < victim->last_ms)) {
			victim = ri;
		}
	}
	if (ts_ms <= s->floor_ts) {
		return (NULL);
	}
	if (victim->inc != 0 && victim->max_ts > s->floor_ts) {
		s->floor_ts = victim->max_ts;
	}
	memset(victim, 0, sizeof(*victim));
	victim->inc = inc;
	return (victim);
}

weft_replay_verdict
weft_replay_check(weft_replay *r, const char *sender, uint64_t incarnation,
    uint64_t seq, int64_t ts_ms, int64_t now_ms)
{
	replay_sender      *s;
	replay_inc         *ri;
	weft_replay_verdict v = WEFT_REPLAY_OK;

	if (ts_ms > now_ms + r->skew_ms || ts_ms < now_ms - r->skew_ms) {
		return (WEFT_REPLAY_SKEW);
	}
	if (incarnation == 0 || seq == 0) {
		return (WEFT_REPLAY_OLD); // never sent by weft_wire_pack
	}
	pthread_mutex_lock(&r->lock);
	s  = replay_sender_get(r, sender, now_ms);
	ri = replay_inc_get(s, incarnation, ts_ms);
	if (ri == NULL) {
		v = WEFT_REPLAY_OLD;
	} else if (ri->top == 0 || seq > ri->top) {
		replay_shift(ri, ri->top == 0 ? WEFT_REPLAY_WINDOW : seq - ri->top);
		ri->top = seq;
		ri->bits[0] |= 1;
	} else if (ri->top - seq >= WEFT_REPLAY_WINDOW) {
		v = WEFT_REPLAY_OLD;
	} else {
		uint64_t d = ri->top - seq;
		if (ri->bits[d / 64] & (1ull << (d % 64))) {
			v = WEFT_REPLAY_SEEN;
		} else {
			ri->bits[d / 64] |= 1ull << (d % 64);
		}
	}
	if (v == WEFT_REPLAY_OK) {
		ri->last_ms = s->last_ms = now_ms;
		if (ts_ms > ri->max_ts) {
			ri->max_ts = ts_ms;
		}
	}
	pthread_mutex_unlock(&r->lock);
	return (v);
}
