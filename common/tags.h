// tags: a run's tags, a small map of strings given at creation (weft run
// --tag k=v, the API's "tags"), and the "key=value" form the filters
// take. One set of rules for the CLI, the HTTP API and the engine.
#ifndef WEFT_TAGS_H
#define WEFT_TAGS_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

// Bounds on a run's tags: how many, and the bytes of a key and a value.
#define WEFT_TAGS_MAX 32
#define WEFT_TAG_KEY_MAX 64
#define WEFT_TAG_VALUE_MAX 256

// weft_tags_check says whether tags (borrowed) is a valid tag map: an
// object of at most WEFT_TAGS_MAX members, each key 1-64 bytes of A-Z a-z
// 0-9 _ . - / (no '=', which the filter form splits at), each value a
// string of at most 256 bytes without NUL. False with the reason, naming
// the tag, in err. Any thread.
bool weft_tags_check(json_t *tags, char *err, size_t errlen);

// weft_tag_parse splits a filter or flag "key=value" (borrowed) at its
// first '=' into key (klen) and value (vlen), checking both by the rules
// above. False with the reason in err. Any thread.
bool weft_tag_parse(const char *kv, char *key, size_t klen, char *value,
    size_t vlen, char *err, size_t errlen);

#endif
