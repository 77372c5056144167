// query: query strings, known members and known values (query.h).
#include <stdio.h>
#include <string.h>

#include "query.h"

bool
weft_query_get(const char *uri, const char *key, char *buf, size_t len)
{
	const char *q    = strchr(uri, '?');
	size_t      klen = strlen(key);

	for (q = q ? q + 1 : NULL; q != NULL && *q != '\0';) {
		const char *amp = strchr(q, '&');
		const char *end = amp ? amp : q + strlen(q);
		if ((size_t) (end - q) > klen && strncmp(q, key, klen) == 0 &&
		    q[klen] == '=') {
			size_t o = 0;
			for (const char *p = q + klen + 1; p < end && o + 1 < len; p++) {
				unsigned v;
				if (*p == '%' && end - p > 2 &&
				    sscanf(p + 1, "%2x", &v) == 1) {
					buf[o++] = (char) v;
					p += 2;
				} else {
					buf[o++] = *p == '+' ? ' ' : *p;
				}
			}
			buf[o] = '\0';
			return (true);
		}
		q = amp ? amp + 1 : NULL;
	}
	return (false);
}

// query_known says whether the n bytes at name are one of the entries of
// the comma-separated list known.
static bool
query_known(const char *name, size_t n, const char *known)
{
	while (n > 0 && *known != '\0') {
		size_t k = strcspn(known, ",");
		if (k == n && strncmp(known, name, n) == 0) {
			return (true);
		}
		known += k + (known[k] == ',');
	}
	return (false);
}

// query_unknown writes the refusal of the name (n bytes) that known lacks.
static void
query_unknown(const char *kind, const char *name, size_t n,
    const char *where, const char *known, char *err, size_t errlen)
{
	char list[512];
	size_t o = 0;

	list[0] = '\0';
	for (const char *k = known; *k != '\0' && o + 3 < sizeof(list); k++) {
		// "a,b" -> "a, b": the list as a sentence.
		o += (size_t) snprintf(list + o, sizeof(list) - o,
		    *k == ',' ? ", " : "%c", *k);
	}
	snprintf(err, errlen, "unknown %s \"%.*s\"%s%s (%s%s)", kind,
	    n > 64 ? 64 : (int) n, name, where[0] != '\0' ? " in " : "", where,
	    known[0] != '\0' ? "known: " : "none is taken here",
	    known[0] != '\0' ? list : "");
}

bool
weft_query_check(const char *uri, const char *known, char *err, size_t errlen)
{
	const char *q = strchr(uri, '?');

	for (q = q ? q + 1 : NULL; q != NULL && *q != '\0';) {
		size_t n   = strcspn(q, "&");
		size_t key = strcspn(q, "=&");
		if (!query_known(q, key, known)) {
			query_unknown("query parameter", q, key, "", known, err,
			    errlen);
			return (false);
		}
		q = q[n] == '&' ? q + n + 1 : NULL;
	}
	return (true);
}

bool
weft_query_fields(const json_t *obj, const char *known, const char *where,
    char *err, size_t errlen)
{
	const char *k;
	json_t     *v;

	json_object_foreach ((json_t *) obj, k, v) {
		if (!query_known(k, strlen(k), known)) {
			query_unknown("field", k, strlen(k), where, known, err,
			    errlen);
			return (false);
		}
	}
	return (true);
}

bool
weft_query_one_of(const char *what, const char *v, const char *const *names,
    size_t n, char *err, size_t errlen)
{
	size_t o;

	for (size_t i = 0; i < n; i++) {
		if (strcmp(v, names[i]) == 0) {
			return (true);
		}
	}
	o = (size_t) snprintf(err, errlen, "%s: \"%.64s\" is not one of ", what,
	    v);
	for (size_t i = 0; i < n && o < errlen; i++) {
		o += (size_t) snprintf(err + o, errlen - o, "%s%s",
		    i > 0 ? ", " : "", names[i]);
	}
	return (false);
}
