// map_test: the string hash map against a plain array model. Seeded
// scripts of puts, replaces, gets and deletes over keys that share long
// prefixes (like "run id/step id"), so probes cross tombstones, collide
// and grow the table; after every step the map must agree with the model,
// and an iteration must visit each live key exactly once. Half the puts
// go through weft_map_slot_h (find or add, then fill), and the table is
// now and then reserved for more entries than it holds.
#include <criterion/criterion.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "map.h"

#define T_TIMEOUT (60 * WEFT_TEST_MULT)
#define UNIVERSE 3000 // distinct keys a script draws from

typedef struct model {
	void *value[UNIVERSE]; // NULL: absent
	size_t count;
} model;

static char keys[UNIVERSE][64];

static void
keys_init(void)
{
	for (int i = 0; i < UNIVERSE; i++) {
		// One long shared prefix, as every step key of a run has.
		snprintf(keys[i], sizeof(keys[i]),
		    "0193f5a2-7c41-7d2e-9b8a-3f1e2d4c5b6a/step-%d", i);
	}
}

// rnd is xorshift64*: the same script for the same seed everywhere.
static uint64_t
rnd(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return (*s * 2685821657736338717ull);
}

// check compares m with the model: every key's value, the count, and one
// visit per live key in an iteration.
static void
check(const weft_map *m, const model *want, const char *where)
{
	static unsigned char seen[UNIVERSE];
	const char          *k;
	void                *v;
	size_t               n = 0;

	cr_assert_eq(m->count, want->count, "%s: count", where);
	memset(seen, 0, sizeof(seen));
	for (size_t i = 0; weft_map_each(m, &i, &k, &v);) {
		int id = atoi(strrchr(k, '-') + 1);
		cr_assert(id >= 0 && id < UNIVERSE && !seen[id],
		    "%s: %s visited twice or unknown", where, k);
		seen[id] = 1;
		cr_assert_eq(v, want->value[id], "%s: %s by iteration", where, k);
		n++;
	}
	cr_assert_eq(n, want->count, "%s: iteration visited %zu", where, n);
	for (int i = 0; i < UNIVERSE; i++) {
		cr_assert_eq(weft_map_get(m, keys[i]), want->value[i],
		    "%s: get %s", where, keys[i]);
		cr_assert_eq(weft_map_get_h(m, keys[i], weft_map_hash(keys[i])),
		    want->value[i], "%s: get_h %s", where, keys[i]);
	}
}

// One script: ops operations with a given mix, from seed.
struct map_row {
	const char *name;
	uint64_t    seed;
	int         ops;
	int         put_pct; // the rest are deletes (gets happen in check)
	int         span;    // keys drawn from the first span of the universe
};

static const struct map_row rows[] = {
	{ "grow_only", 1, 3000, 100, UNIVERSE },
	{ "churn_small_set", 2, 6000, 50, 40 },
	{ "tombstones_then_regrow", 3, 8000, 35, 2000 },
	{ "mostly_deletes", 4, 6000, 20, UNIVERSE },
	{ "replace_heavy", 5, 6000, 90, 200 },
};

Test(map, agrees_with_a_model, .timeout = T_TIMEOUT)
{
	keys_init();
	for (size_t r = 0; r < sizeof(rows) / sizeof(rows[0]); r++) {
		const struct map_row *row = &rows[r];
		static model          want;
		weft_map              m;
		uint64_t              s = row->seed * 0x9E3779B97F4A7C15ull;
		char                  where[96];

		memset(&want, 0, sizeof(want));
		weft_map_init(&m);
		check(&m, &want, row->name); // an empty map: get on no table
		cr_assert_null(weft_map_del(&m, keys[0]));
		for (int op = 0; op < row->ops; op++) {
			int   id  = (int) (rnd(&s) % (uint64_t) row->span);
			void *val = (void *) (uintptr_t) (op + 1);
			snprintf(where, sizeof(where), "%s op %d", row->name, op);
			if (op % 701 == 0) {
				// Room for more than it holds: nothing changes.
				weft_map_reserve(&m, m.count + rnd(&s) % 3000);
				check(&m, &want, where);
			}
			if ((int) (rnd(&s) % 100) < row->put_pct &&
			    rnd(&s) % 2 == 0) {
				bool   added;
				void **v = weft_map_slot_h(&m, keys[id],
				    weft_map_hash(keys[id]), &added);
				cr_assert_eq(added, want.value[id] == NULL,
				    "%s: slot's added", where);
				cr_assert_eq(added ? NULL : *v, want.value[id],
				    "%s: slot's value", where);
				*v = val;
				want.count += want.value[id] == NULL;
				want.value[id] = val;
			} else if ((int) (rnd(&s) % 100) < row->put_pct) {
				void *old = weft_map_put(&m, keys[id], val);
				cr_assert_eq(old, want.value[id], "%s: put's old",
				    where);
				want.count += want.value[id] == NULL;
				want.value[id] = val;
			} else {
				void *old = weft_map_del(&m, keys[id]);
				cr_assert_eq(old, want.value[id], "%s: del's old",
				    where);
				want.count -= want.value[id] != NULL;
				want.value[id] = NULL;
			}
			if (op % 500 == 0 || op == row->ops - 1) {
				check(&m, &want, where);
			}
		}
		weft_map_fini(&m);
	}
}

// A key is copied: the caller's buffer may change after the put.
Test(map, keys_are_copied)
{
	weft_map m;
	char     k[16] = "run/a";
	int      x;

	weft_map_init(&m);
	cr_assert_null(weft_map_put(&m, k, &x));
	k[4] = 'b';
	cr_assert_eq(weft_map_get(&m, "run/a"), &x);
	cr_assert_null(weft_map_get(&m, "run/b"));
	weft_map_fini(&m);
}

// weft_map_reserve's point: filling the reserved room never grows the
// table (the store reserves a batch's rows at once).
Test(map, reserve_makes_room_for_n)
{
	weft_map       m;
	weft_map_slot *slots;

	keys_init();
	weft_map_init(&m);
	weft_map_reserve(&m, 1000);
	slots = m.slots;
	for (int i = 0; i < 1000; i++) {
		weft_map_put(&m, keys[i], keys[i]);
	}
	cr_assert_eq(m.slots, slots, "filling 1000 reserved entries grew it");
	for (int i = 0; i < 1000; i++) {
		cr_assert_eq(weft_map_get(&m, keys[i]), keys[i]);
	}
	weft_map_reserve(&m, 10); // less than it holds: nothing changes
	cr_assert_eq(m.slots, slots);
	weft_map_fini(&m);
}
