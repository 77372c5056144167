// idem: idempotency keys of run requests. A request carrying a key that a
// run made within --idempotency-window already carries answers that run
// instead of making another (Stripe's rule: the first request's run is
// the answer, whatever the repeat asks for).
//
// The runs made since start are kept here by key, because a repeat may
// come before their batch is durable (the same batch request, or the
// next iteration while the commit is under way); older ones are found in
// the store by an indexed lookup (runs_idempotency, migration 0008), so
// keys survive a restart without being loaded at start.
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "engine_int.h"

typedef struct idem_ent {
	char    id[WEFT_ID_LEN + 1];
	int64_t created_ms; // wall ms
} idem_ent;

// The first prune happens at this many keys; then at twice what is left.
#define IDEM_PRUNE_MIN 1024

static int64_t
idem_window(const weft_engine *e)
{
	return (e->cfg.idempotency_window_ms > 0 ? e->cfg.idempotency_window_ms
	                                         : WEFT_IDEMPOTENCY_WINDOW_DEFAULT);
}

// idem_prune drops the keys older than the window: the map stays about
// the size of the keys made within one window, amortised O(1) a key.
static void
idem_prune(weft_engine *e, int64_t now)
{
	const char *k;
	void       *v;
	char      **dead = weft_xalloc((e->idem.count + 1) * sizeof(*dead));
	size_t      n    = 0;

	for (size_t i = 0; weft_map_each(&e->idem, &i, &k, &v);) {
		if (now - ((idem_ent *) v)->created_ms >= idem_window(e)) {
			dead[n++] = weft_xstrdup(k);
		}
	}
	for (size_t i = 0; i < n; i++) {
		free(weft_map_del(&e->idem, dead[i]));
		free(dead[i]);
	}
	free(dead);
	e->idem_prune_at = 2 * e->idem.count > IDEM_PRUNE_MIN
	    ? 2 * e->idem.count
	    : IDEM_PRUNE_MIN;
}

void
idem_note(weft_engine *e, const char *key, const char *id, int64_t now)
{
	idem_ent *x = weft_xalloc(sizeof(*x));

	snprintf(x->id, sizeof(x->id), "%s", id);
	x->created_ms = now;
	free(weft_map_put(&e->idem, key, x));
	if (e->idem.count >= e->idem_prune_at) {
		idem_prune(e, now);
	}
}

weft_err
idem_find(weft_engine *e, const char *key, int64_t now,
    char id[WEFT_ID_LEN + 1])
{
	idem_ent *x = weft_map_get(&e->idem, key);
	int64_t   created;
	weft_err  rv;

	if (x != NULL && now - x->created_ms < idem_window(e)) {
		memcpy(id, x->id, WEFT_ID_LEN + 1);
		return (WEFT_OK);
	}
	if (x != NULL) {
		// Expired: the store has nothing newer either (a newer run
		// with this key would have replaced it here).
		free(weft_map_del(&e->idem, key));
		return (WEFT_ENOENT);
	}
	rv = weft_store_find_idempotent(engine_quiesce(e), key,
	    now - idem_window(e) + 1, id, WEFT_ID_LEN + 1, &created);
	if (rv == WEFT_OK) {
		idem_note(e, key, id, created);
	}
	return (rv);
}

void
idem_fini(weft_engine *e)
{
	const char *k;
	void       *v;

	for (size_t i = 0; weft_map_each(&e->idem, &i, &k, &v);) {
		free(v);
	}
	weft_map_fini(&e->idem);
}
