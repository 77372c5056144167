// map: a string-keyed hash map (open addressing, linear probing). Keys are
// copied; values are borrowed pointers. Not thread-safe.
#ifndef WEFT_MAP_H
#define WEFT_MAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct weft_map_slot {
	char    *key;   // owned copy, NULL = empty
	void    *value;
	uint64_t hash;  // key's: a probe compares it before the strings
	bool     dead;  // tombstone left by a delete
} weft_map_slot;

typedef struct weft_map {
	weft_map_slot *slots;
	size_t         cap;   // power of two
	size_t         count; // live entries
	size_t         used;  // live + tombstones
} weft_map;

void  weft_map_init(weft_map *m);
void  weft_map_fini(weft_map *m); // frees keys, not values
void *weft_map_get(const weft_map *m, const char *key);
// weft_map_put sets key -> value, replacing; returns the old value or NULL.
void *weft_map_put(weft_map *m, const char *key, void *value);
// weft_map_del removes key; returns its value or NULL.
void *weft_map_del(weft_map *m, const char *key);

// For a caller that looks one key up in several maps, or finds and then
// fills: the key's hash once (weft_map_hash), then weft_map_get_h, and
// weft_map_slot_h, which returns the key's value slot, adding the key
// (copied, value NULL, *added set) when it is not there: one probe
// instead of a get and a put.
uint64_t weft_map_hash(const char *key);
void    *weft_map_get_h(const weft_map *m, const char *key, uint64_t h);
void   **weft_map_slot_h(
      weft_map *m, const char *key, uint64_t h, bool *added);
// weft_map_reserve makes room for n live entries, so that filling an
// empty map with them does not grow it step by step.
void weft_map_reserve(weft_map *m, size_t n);

// weft_map_each iterates: for (size_t i = 0; weft_map_each(m, &i, &k, &v);)
bool weft_map_each(const weft_map *m, size_t *pos, const char **key,
    void **value);

#endif
