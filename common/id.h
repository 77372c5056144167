// id: time-ordered identifiers (ULID layout: 48-bit ms time + 80 random bits,
// Crockford base32, 26 characters). Ids made in one process sort in the
// order they were made.
#ifndef WEFT_ID_H
#define WEFT_ID_H

#include <stdbool.h>

#define WEFT_ID_LEN 26

// weft_id_new writes a new id into buf (at least WEFT_ID_LEN + 1 bytes).
// Thread-safe.
void weft_id_new(char *buf);

// weft_id_valid reports whether s looks like an id weft_id_new made.
bool weft_id_valid(const char *s);

#endif
