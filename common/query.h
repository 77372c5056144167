// query: the pieces of a request's query string and body that the HTTP API
// checks before anything is routed, and the CLI checks before anything is
// sent: unknown parameters, unknown members, values outside a known list.
// Pure: no I/O, no allocation that outlives a call. Any thread.
#ifndef WEFT_QUERY_H
#define WEFT_QUERY_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

// weft_query_get copies the percent-decoded value of the first parameter
// key of the query string of uri (borrowed; the part after '?') into buf
// (len bytes, always NUL-terminated, cut to fit); false when absent.
bool weft_query_get(const char *uri, const char *key, char *buf, size_t len);

// weft_query_check says whether every parameter of uri's query string is
// named in known (a comma-separated list, "" for none: "status,limit").
// False, with err naming the first other one and the known ones, when not;
// an empty name ("?=1", "?&") counts as unknown.
bool weft_query_check(
    const char *uri, const char *known, char *err, size_t errlen);

// weft_query_fields says whether every member of obj (borrowed; an object)
// is named in known (as above); false with err naming the first other one,
// where (the body it is in: "run request") and the known ones.
bool weft_query_fields(const json_t *obj, const char *known,
    const char *where, char *err, size_t errlen);

// weft_query_one_of says whether v is one of the names (n of them);
// false with err "what: \"v\" is not one of a, b, c".
bool weft_query_one_of(const char *what, const char *v,
    const char *const *names, size_t n, char *err, size_t errlen);

#endif // WEFT_QUERY_H
