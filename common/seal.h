// seal: authenticated encryption of small blobs at rest (run secrets).
//
// libsodium's crypto_secretbox_easy (XSalsa20-Poly1305) with a fresh random
// nonce per blob; the sealed form is base64 text of nonce || box, so it
// fits a TEXT column on every store backend.
#ifndef WEFT_SEAL_H
#define WEFT_SEAL_H

#include <stddef.h>
#include <stdint.h>

#include "cookie.h"
#include "err.h"

// weft_seal encrypts plain (len bytes, borrowed) under key and returns the
// sealed text (malloc'd; free()). Any thread; weft_crypto_init must have
// run (it is called here too, and is idempotent).
char *weft_seal(const uint8_t key[WEFT_KEY_LEN], const void *plain, size_t len);

// weft_unseal opens sealed (borrowed) under key. On success *out is the
// plaintext (malloc'd, NUL-terminated for convenience; free()) and *len
// its length. WEFT_EINVAL when the text is not a sealed blob, WEFT_EAUTH
// when the key is wrong or the blob was altered: nothing is returned then.
weft_err weft_unseal(const uint8_t key[WEFT_KEY_LEN], const char *sealed,
    char **out, size_t *len);

#endif
