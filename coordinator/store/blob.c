// blob: content hashes, references and previews of large values; the
// table they live in is written by store.c and read by store_blob.c.
#include "blob.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "alloc.h"
#include "jsonx.h"

void
weft_blob_take(weft_blob *b, char *text, size_t len)
{
	unsigned char sum[crypto_hash_sha256_BYTES];
	static const char hex[] = "0123456789abcdef";

	crypto_hash_sha256(sum, (const unsigned char *) text, len);
	memcpy(b->hash, "sha256:", 7);
	for (size_t i = 0; i < sizeof(sum); i++) {
		b->hash[7 + 2 * i]     = hex[sum[i] >> 4];
		b->hash[7 + 2 * i + 1] = hex[sum[i] & 15];
	}
	b->hash[WEFT_BLOB_HASH_LEN] = '\0';
	b->text                     = text;
	b->len                      = len;
}

size_t
weft_blob_cut(const char *text, size_t len, size_t max)
{
	size_t n = len < max ? len : max;

	// Back off from a continuation byte (10xxxxxx) to the start of its
	// character: PostgreSQL refuses TEXT that is not whole UTF-8.
	while (n < len && n > 0 && ((unsigned char) text[n] & 0xC0) == 0x80) {
		n--;
	}
	return (n);
}

json_t *
weft_blob_ref(const weft_blob *b)
{
	size_t n = weft_blob_cut(b->text, b->len, WEFT_BLOB_PREVIEW);

	return (json_pack("{s:s, s:I, s:s%}", "$blob", b->hash, "size",
	    (json_int_t) b->len, "preview", b->text, n));
}

const char *
weft_blob_ref_hash(const json_t *v)
{
	const char *h = json_string_value(json_object_get(v, "$blob"));

	if (h == NULL || strncmp(h, "sha256:", 7) != 0 ||
	    strlen(h) != WEFT_BLOB_HASH_LEN) {
		return (NULL);
	}
	return (h);
}

json_t *
weft_blob_extract(json_t *data, size_t textlen, weft_blob **blobs, size_t *n)
{
	json_t     *out = NULL, *v;
	const char *key;

	if (!json_is_object(data) || textlen <= WEFT_BLOB_THRESHOLD) {
		return (NULL);
	}
	json_object_foreach (data, key, v) {
		// Measured first: only a large member is written out, once (a
		// 100 MB map output must not be held twice as text).
		size_t len = json_dumpb(v, NULL, 0, JSON_COMPACT | JSON_ENCODE_ANY);
		if (len <= WEFT_BLOB_THRESHOLD) {
			continue;
		}
		char *t = weft_json_dump(v);
		*blobs  = weft_xrealloc(*blobs, (*n + 1) * sizeof(**blobs));
		weft_blob_take(&(*blobs)[*n], t, strlen(t));
		if (out == NULL) {
			out = json_copy(data); // shallow: members shared
		}
		json_object_set_new(out, key, weft_blob_ref(&(*blobs)[*n]));
		(*n)++;
	}
	return (out);
}

void
weft_blob_free(weft_blob *blobs, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(blobs[i].text);
	}
	free(blobs);
}
