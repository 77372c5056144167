// seal: crypto_secretbox_easy with a random nonce, as base64 text.
#include "seal.h"

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "alloc.h"

#define SEAL_B64 sodium_base64_VARIANT_ORIGINAL

char *
weft_seal(const uint8_t key[WEFT_KEY_LEN], const void *plain, size_t len)
{
	size_t   blen = crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES +
	    len;
	uint8_t *bin  = weft_xalloc(blen);
	size_t   tlen = sodium_base64_ENCODED_LEN(blen, SEAL_B64);
	char    *text = weft_xalloc(tlen);

	WEFT_ASSERT(weft_crypto_init() == 0);
	randombytes_buf(bin, crypto_secretbox_NONCEBYTES);
	crypto_secretbox_easy(bin + crypto_secretbox_NONCEBYTES, plain, len,
	    bin, key);
	sodium_bin2base64(text, tlen, bin, blen, SEAL_B64);
	free(bin);
	return (text);
}

weft_err
weft_unseal(const uint8_t key[WEFT_KEY_LEN], const char *sealed, char **out,
    size_t *len)
{
	size_t   slen = strlen(sealed);
	uint8_t *bin  = weft_xalloc(slen + 1);
	size_t   blen = 0;
	char    *plain;

	*out = NULL;
	*len = 0;
	WEFT_ASSERT(weft_crypto_init() == 0);
	if (sodium_base642bin(bin, slen + 1, sealed, slen, NULL, &blen, NULL,
	        SEAL_B64) != 0 ||
	    blen < crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES) {
		free(bin);
		return (WEFT_EINVAL);
	}
	blen -= crypto_secretbox_NONCEBYTES;
	plain = weft_xalloc(blen - crypto_secretbox_MACBYTES + 1);
	if (crypto_secretbox_open_easy((uint8_t *) plain,
	        bin + crypto_secretbox_NONCEBYTES, blen, bin, key) != 0) {
		free(bin);
		free(plain);
		return (WEFT_EAUTH);
	}
	free(bin);
	*len       = blen - crypto_secretbox_MACBYTES;
	plain[*len] = '\0';
	*out       = plain;
	return (WEFT_OK);
}
