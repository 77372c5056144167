// store_ops: the reads issue 14's operations need: a run by idempotency
// key, and a definition's versions.
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "alloc.h"
#include "store.h"

typedef struct idem_hit {
	char   *id;
	size_t  idlen;
	int64_t created_ms;
	bool    found;
} idem_hit;

static int
ops_idem_row(void *arg, int ncols, const char **c)
{
	idem_hit *h = arg;

	if (ncols >= 2 && c[0] != NULL && c[1] != NULL) {
		snprintf(h->id, h->idlen, "%s", c[0]);
		h->created_ms = strtoll(c[1], NULL, 10);
		h->found      = true;
	}
	return (1); // the newest is enough
}

weft_err
weft_store_find_idempotent(weft_store *s, const char *key, int64_t since_ms,
    char *id, size_t idlen, int64_t *created_ms)
{
	char        since[24];
	const char *p[2] = { key, since };
	idem_hit    h    = { .id = id, .idlen = idlen };
	weft_err    rv;

	snprintf(since, sizeof(since), "%" PRId64, since_ms);
	rv = s->ops->query(s,
	    "SELECT id, created_ms FROM runs WHERE idempotency_key = ? AND "
	    "created_ms >= ? ORDER BY created_ms DESC LIMIT 1",
	    p, 2, ops_idem_row, &h);
	if (rv != WEFT_OK) {
		return (rv);
	}
	if (!h.found) {
		return (WEFT_ENOENT);
	}
	*created_ms = h.created_ms;
	return (WEFT_OK);
}

// ops_hash writes "sha256:HEX" of text into out (72 bytes).
static void
ops_hash(const char *text, char out[7 + 64 + 1])
{
	unsigned char d[crypto_hash_sha256_BYTES];

	crypto_hash_sha256(d, (const unsigned char *) text, strlen(text));
	memcpy(out, "sha256:", 7);
	sodium_bin2hex(out + 7, 65, d, sizeof(d));
}

typedef struct ops_versions {
	json_t *list;   // {version, created_ms, hash} per row
	bool    bodies; // keep the body (one version asked for)
	json_t *body;   // that body, parsed
} ops_versions;

static int
ops_version_row(void *arg, int ncols, const char **c)
{
	ops_versions *v = arg;
	char          hash[7 + 64 + 1];

	if (ncols < 3 || c[0] == NULL || c[1] == NULL || c[2] == NULL) {
		return (1);
	}
	ops_hash(c[2], hash);
	json_array_append_new(v->list,
	    json_pack("{s:I, s:I, s:s}", "version",
	        (json_int_t) strtoll(c[0], NULL, 10), "created_ms",
	        (json_int_t) strtoll(c[1], NULL, 10), "hash", hash));
	if (v->bodies && v->body == NULL) {
		v->body = json_loads(c[2], JSON_DECODE_ANY, NULL);
	}
	return (0);
}

weft_err
weft_store_definition_versions(
    weft_store *s, const char *name, uint32_t version, json_t **out)
{
	char         ver[16];
	const char  *p[2] = { name, ver };
	ops_versions v    = { .list = json_array(), .bodies = version > 0 };
	weft_err     rv;

	*out = NULL;
	snprintf(ver, sizeof(ver), "%" PRIu32, version);
	rv = version > 0
	    ? s->ops->query(s,
	          "SELECT version, created_ms, body FROM definitions WHERE "
	          "name = ? AND version = ?",
	          p, 2, ops_version_row, &v)
	    : s->ops->query(s,
	          "SELECT version, created_ms, body FROM definitions WHERE "
	          "name = ? ORDER BY version",
	          p, 1, ops_version_row, &v);
	if (rv == WEFT_OK && json_array_size(v.list) == 0) {
		snprintf(s->error, sizeof(s->error),
		    version > 0 ? "definition \"%s\" has no version %s"
		                : "no definition named \"%s\"%s",
		    name, version > 0 ? ver : "");
		rv = WEFT_ENOENT;
	}
	if (rv == WEFT_OK && version > 0) {
		*out = json_deep_copy(json_array_get(v.list, 0));
		json_object_set_new(*out, "name", json_string(name));
		json_object_set_new(*out, "definition",
		    v.body != NULL ? json_incref(v.body) : json_null());
	} else if (rv == WEFT_OK) {
		*out = json_pack("{s:s, s:O}", "name", name, "versions", v.list);
	}
	json_decref(v.body);
	json_decref(v.list);
	return (rv);
}
