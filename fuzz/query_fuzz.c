// query_fuzz: libFuzzer target for what the HTTP API checks in a request
// before routing it (common/query.c): weft_query_check and weft_query_get
// on the input as a request URI, weft_query_one_of on it as a value, and
// weft_query_fields on it as a JSON body. Checks: deterministic; a
// refusal says what it refuses; a URI whose parameters were all accepted
// is accepted again when the list is exactly its own names; a decoded
// value fits its buffer (sized exactly, so ASan sees one byte too many)
// and is never longer than the URI.
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "query.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

// names_of writes the parameter names of uri's query string into out as a
// comma-separated list; false when one is empty or holds a comma (no
// list names it).
static bool
names_of(const char *uri, char *out, size_t len)
{
	const char *q = strchr(uri, '?');
	size_t      o = 0;

	out[0] = '\0';
	for (q = q ? q + 1 : NULL; q != NULL && *q != '\0';) {
		size_t key = strcspn(q, "=&");
		size_t n   = strcspn(q, "&");
		if (key == 0 || memchr(q, ',', key) != NULL ||
		    o + key + 2 > len) {
			return (false);
		}
		o += (size_t) snprintf(out + o, len - o, "%s%.*s", o ? "," : "",
		    (int) key, q);
		q = q[n] == '&' ? q + n + 1 : NULL;
	}
	return (true);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const names[] = { "queued", "running", "" };
	char  *uri = malloc(size + 1);
	char   err[2048], err2[2048], own[4096];
	bool   ok, ok2;
	json_t *body;

	memcpy(uri, data, size);
	uri[size] = '\0';
	err[0] = err2[0] = '\0';
	ok  = weft_query_check(uri, "status,limit,tag", err, sizeof(err));
	ok2 = weft_query_check(uri, "status,limit,tag", err2, sizeof(err2));
	if (ok != ok2 || strcmp(err, err2) != 0) {
		abort(); // not deterministic
	}
	if (!ok && strncmp(err, "unknown query parameter \"", 25) != 0) {
		abort();
	}
	if (names_of(uri, own, sizeof(own)) && own[0] != '\0' &&
	    !weft_query_check(uri, own, err, sizeof(err))) {
		abort(); // its own names were refused
	}
	for (size_t len = 1; len <= 9; len += 4) {
		char *buf = malloc(len);
		if (weft_query_get(uri, "status", buf, len) &&
		    strlen(buf) >= len) {
			abort();
		}
		free(buf);
	}
	char *v = malloc(size + 1);
	if (weft_query_get(uri, "tag", v, size + 1) && strlen(v) > size) {
		abort();
	}
	free(v);
	if (!weft_query_one_of("status", uri, names, 3, err, sizeof(err)) &&
	    (size == 0 || strncmp(err, "status: \"", 9) != 0)) {
		abort();
	}
	body = json_loadb((const char *) data, size, 0, NULL);
	if (json_is_object(body) &&
	    !weft_query_fields(body, "from", "a retry", err, sizeof(err)) &&
	    strncmp(err, "unknown field \"", 15) != 0) {
		abort();
	}
	json_decref(body);
	free(uri);
	return (0);
}
