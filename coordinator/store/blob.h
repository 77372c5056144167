// blob: large values stored once and referenced. A top-level member of an
// event's data whose JSON text is longer than WEFT_BLOB_THRESHOLD bytes
// goes to the blobs table under its content hash; the event (and so the
// projections, the stream, `weft events` and the API) carries a reference
// in its place: {"$blob": "sha256:HEX", "size": BYTES, "preview": TEXT}.
#ifndef WEFT_BLOB_H
#define WEFT_BLOB_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

// A value above this many bytes of compact JSON is stored as a blob.
#define WEFT_BLOB_THRESHOLD (64u * 1024u)
// The reference's preview: the first bytes of the value's JSON text (whole
// UTF-8 characters), at most this many.
#define WEFT_BLOB_PREVIEW 200u
// A blob is stored in chunks of at most this many bytes (whole UTF-8
// characters), so that reading it back, or sending it over the control
// socket, never needs the whole value in one message.
#define WEFT_BLOB_CHUNK (1024u * 1024u)
// "sha256:" and 64 hex digits.
#define WEFT_BLOB_HASH_LEN 71u

typedef struct weft_blob {
	char   hash[WEFT_BLOB_HASH_LEN + 1]; // "sha256:" + hex of the text
	char  *text; // the value's compact JSON text (owned)
	size_t len;  // bytes of text
} weft_blob;

// weft_blob_extract replaces, in a copy of data (an object, borrowed),
// every top-level member whose compact JSON text is longer than
// WEFT_BLOB_THRESHOLD with a reference, and appends one weft_blob per
// replaced member to *blobs (realloc'd; *n counts them). textlen is the
// length of data's whole compact text: when it is no longer than the
// threshold no member can be, and nothing is done. Returns the new data
// (a new reference), or NULL when no member was replaced. Any thread.
json_t *weft_blob_extract(
    json_t *data, size_t textlen, weft_blob **blobs, size_t *n);

// weft_blob_take fills b with text (len bytes, NUL-terminated, malloc'd:
// taken) and its hash.
void weft_blob_take(weft_blob *b, char *text, size_t len);

// weft_blob_ref returns a new reference object for b.
json_t *weft_blob_ref(const weft_blob *b);

// weft_blob_ref_hash returns the hash a reference names (borrowed from v),
// or NULL when v is not a reference.
const char *weft_blob_ref_hash(const json_t *v);

// weft_blob_cut returns how many bytes of text (len) make the first
// chunk of at most max bytes without splitting a UTF-8 character.
size_t weft_blob_cut(const char *text, size_t len, size_t max);

// weft_blob_free frees the texts of blobs[0..n) and blobs itself.
void weft_blob_free(weft_blob *blobs, size_t n);

#endif
