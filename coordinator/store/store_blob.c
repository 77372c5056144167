// store_blob: reading large values back: a whole blob (recovery puts the
// real values back into runs), one chunk of it (the output endpoint and
// `weft status --output` fetch a value of any size chunk by chunk), and
// the output a step or a run recorded, which may be a reference.
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "jsonx.h"
#include "store.h"

typedef struct blob_buf {
	char  *text;
	size_t len, cap;
	size_t rows;
} blob_buf;

static int
blob_chunk_row(void *arg, int ncols, const char **c)
{
	blob_buf *b = arg;
	size_t    n;

	if (ncols < 1 || c[0] == NULL) {
		return (1);
	}
	n = strlen(c[0]);
	if (b->len + n + 1 > b->cap) {
		b->cap  = (b->len + n + 1) * 2;
		b->text = weft_xrealloc(b->text, b->cap);
	}
	memcpy(b->text + b->len, c[0], n);
	b->len += n;
	b->text[b->len] = '\0';
	b->rows++;
	return (0);
}

weft_err
weft_store_blob_get(weft_store *s, const char *hash, char **text, size_t *len)
{
	blob_buf b = { 0 };
	weft_err rv;

	*text = NULL;
	*len  = 0;
	rv    = s->ops->query(s,
            "SELECT body FROM blob_chunks WHERE hash = ? ORDER BY n", &hash,
            1, blob_chunk_row, &b);
	if (rv == WEFT_OK && b.rows == 0) {
		snprintf(s->error, sizeof(s->error), "no blob %s", hash);
		rv = WEFT_ENOENT;
	}
	if (rv != WEFT_OK) {
		free(b.text);
		return (rv);
	}
	*text = b.text;
	*len  = b.len;
	return (WEFT_OK);
}

static int
blob_meta_row(void *arg, int ncols, const char **c)
{
	uint64_t *v = arg;

	if (ncols >= 2 && c[0] != NULL && c[1] != NULL) {
		v[0] = strtoull(c[0], NULL, 10);
		v[1] = strtoull(c[1], NULL, 10);
		v[2] = 1;
	}
	return (1);
}

weft_err
weft_store_blob_chunk(weft_store *s, const char *hash, uint32_t n,
    char **text, uint64_t *size, uint32_t *nchunks)
{
	uint64_t    meta[3] = { 0, 0, 0 }; // size, chunks, found
	char        idx[16];
	const char *p[2] = { hash, idx };
	blob_buf    b    = { 0 };
	weft_err    rv;

	*text = NULL;
	rv    = s->ops->query(s, "SELECT size, chunks FROM blobs WHERE hash = ?",
            &hash, 1, blob_meta_row, meta);
	if (rv == WEFT_OK && (meta[2] == 0 || n >= meta[1])) {
		snprintf(s->error, sizeof(s->error),
		    meta[2] == 0 ? "no blob %s" : "blob %s has no chunk %u", hash,
		    n);
		return (WEFT_ENOENT);
	}
	snprintf(idx, sizeof(idx), "%u", n);
	if (rv == WEFT_OK) {
		rv = s->ops->query(s,
		    "SELECT body FROM blob_chunks WHERE hash = ? AND n = ?", p, 2,
		    blob_chunk_row, &b);
	}
	if (rv == WEFT_OK && b.rows == 0) {
		snprintf(s->error, sizeof(s->error), "blob %s lost chunk %u",
		    hash, n);
		rv = WEFT_ESTORE;
	}
	if (rv != WEFT_OK) {
		free(b.text);
		return (rv);
	}
	*text    = b.text;
	*size    = meta[0];
	*nchunks = (uint32_t) meta[1];
	return (WEFT_OK);
}

weft_err
weft_store_blob_resolve(weft_store *s, json_t *obj, const char *key)
{
	const char  *h = weft_blob_ref_hash(json_object_get(obj, key));
	char        *text;
	size_t       len;
	json_t      *v;
	json_error_t je;
	weft_err     rv;

	if (h == NULL) {
		return (WEFT_OK);
	}
	if ((rv = weft_store_blob_get(s, h, &text, &len)) != WEFT_OK) {
		return (rv);
	}
	v = json_loadb(text, len, JSON_DECODE_ANY, &je);
	free(text);
	if (v == NULL) {
		snprintf(s->error, sizeof(s->error), "blob %s is not JSON: %s",
		    h, je.text);
		return (WEFT_ESTORE);
	}
	json_object_set_new(obj, key, v);
	return (WEFT_OK);
}

static int
value_row(void *arg, int ncols, const char **c)
{
	json_t **out = arg;

	if (ncols >= 1 && *out == NULL) {
		*out = weft_json_parse_cell(c[0]);
	}
	return (1);
}

weft_err
weft_store_output(
    weft_store *s, const char *run_id, const char *step_id, json_t **out)
{
	const char *p[2] = { run_id, step_id };
	weft_err    rv;

	*out = NULL;
	rv   = step_id != NULL
	      ? s->ops->query(s,
            "SELECT output FROM steps WHERE run_id = ? AND step_id = ?", p,
            2, value_row, out)
	      : s->ops->query(s, "SELECT output FROM runs WHERE id = ?", p, 1,
            value_row, out);
	if (rv == WEFT_OK && *out == NULL) {
		snprintf(s->error, sizeof(s->error),
		    step_id != NULL ? "run %s has no step %s" : "no run %s",
		    run_id, step_id);
		rv = WEFT_ENOENT;
	}
	return (rv);
}
