// tjson: JSON written in tests with ' for ", so that definitions and
// documents in C strings read without escapes.
#ifndef WEFT_TEST_TJSON_H
#define WEFT_TEST_TJSON_H

#include <jansson.h>

// weft_t_dq returns a copy of s with every ' turned into " (malloc'd;
// free()).
char *weft_t_dq(const char *s);

// weft_t_json parses weft_t_dq(s) as any JSON value (a new reference) and
// fails the test, naming the text, when it does not parse. JSON_ALLOW_NUL:
// "\\u0000" may stand in strings.
json_t *weft_t_json(const char *s);

#endif
