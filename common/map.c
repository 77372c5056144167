// map: string hash map for run ids, step ids and worker names.
#include "map.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"

uint64_t
weft_map_hash(const char *s)
{
	uint64_t h = 1469598103934665603ull; // FNV-1a
	for (; *s != '\0'; s++) {
		h = (h ^ (uint8_t) *s) * 1099511628211ull;
	}
	return (h);
}

void
weft_map_init(weft_map *m)
{
	memset(m, 0, sizeof(*m));
}

void
weft_map_fini(weft_map *m)
{
	for (size_t i = 0; i < m->cap; i++) {
		free(m->slots[i].key);
	}
	free(m->slots);
	memset(m, 0, sizeof(*m));
}

// map_find returns key's slot (h: its hash), or NULL. A probe compares
// the stored hash first: a string compare per slot passed was most of a
// lookup in the store's maps of 10,000 held rows (perf, W1).
static weft_map_slot *
map_find(const weft_map *m, const char *key, uint64_t h)
{
	if (m->cap == 0) {
		return (NULL);
	}
	for (size_t i = h & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
		weft_map_slot *s = &m->slots[i];
		if (s->key == NULL && !s->dead) {
			return (NULL);
		}
		if (s->key != NULL && s->hash == h && strcmp(s->key, key) == 0) {
			return (s);
		}
	}
}

// map_rehash moves the live entries into a table of newcap slots.
static void
map_rehash(weft_map *m, size_t newcap)
{
	weft_map_slot *old = m->slots;
	size_t         cap = m->cap;

	m->cap   = newcap;
	m->slots = weft_xalloc(m->cap * sizeof(*m->slots));
	m->count = m->used = 0;
	for (size_t i = 0; i < cap; i++) {
		if (old[i].key != NULL) {
			size_t j = old[i].hash & (m->cap - 1);
			while (m->slots[j].key != NULL) {
				j = (j + 1) & (m->cap - 1);
			}
			m->slots[j] = old[i];
			m->count++;
			m->used++;
		}
	}
	free(old);
}

static void
map_grow(weft_map *m)
{
	// Mostly tombstones (a map of many puts and deletes): clean them out
	// at the same size rather than doubling.
	map_rehash(m, m->cap == 0 ? 64
	                          : (m->count * 2 < m->used ? m->cap : m->cap * 2));
}

void
weft_map_reserve(weft_map *m, size_t n)
{
	size_t cap = m->cap == 0 ? 64 : m->cap;

	while ((n + 1) * 4 >= cap * 3) {
		cap *= 2;
	}
	if (cap != m->cap) {
		map_rehash(m, cap);
	}
}

void *
weft_map_get(const weft_map *m, const char *key)
{
	weft_map_slot *s = map_find(m, key, weft_map_hash(key));
	return (s != NULL ? s->value : NULL);
}

void *
weft_map_get_h(const weft_map *m, const char *key, uint64_t h)
{
	weft_map_slot *s = map_find(m, key, h);
	return (s != NULL ? s->value : NULL);
}

void **
weft_map_slot_h(weft_map *m, const char *key, uint64_t h, bool *added)
{
	weft_map_slot *s = map_find(m, key, h);
	size_t         i;

	*added = s == NULL;
	if (s != NULL) {
		return (&s->value);
	}
	if ((m->used + 1) * 4 >= m->cap * 3) {
		map_grow(m);
	}
	i = h & (m->cap - 1);
	while (m->slots[i].key != NULL) {
		i = (i + 1) & (m->cap - 1);
	}
	if (!m->slots[i].dead) {
		m->used++;
	}
	m->slots[i].key   = weft_xstrdup(key);
	m->slots[i].hash  = h;
	m->slots[i].value = NULL;
	m->slots[i].dead  = false;
	m->count++;
	return (&m->slots[i].value);
}

void *
weft_map_put(weft_map *m, const char *key, void *value)
{
	bool   added;
	void **v   = weft_map_slot_h(m, key, weft_map_hash(key), &added);
	void  *old = added ? NULL : *v;

	*v = value;
	return (old);
}

void *
weft_map_del(weft_map *m, const char *key)
{
	weft_map_slot *s = map_find(m, key, weft_map_hash(key));
	void          *v;

	if (s == NULL) {
		return (NULL);
	}
	v = s->value;
	free(s->key);
	s->key   = NULL;
	s->value = NULL;
	s->dead  = true;
	m->count--;
	return (v);
}

bool
weft_map_each(const weft_map *m, size_t *pos, const char **key, void **value)
{
	while (*pos < m->cap) {
		weft_map_slot *s = &m->slots[(*pos)++];
		if (s->key != NULL) {
			*key   = s->key;
			*value = s->value;
			return (true);
		}
	}
	return (false);
}
