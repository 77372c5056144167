// tokens_fuzz: libFuzzer target for the API token file (--api-tokens), an
// operator's file read at start: weft_tokens_parse on arbitrary bytes. A
// success has 1..WEFT_AUTH_MAX entries with plain names and a role; an
// error names the file and keeps nothing; parsing is deterministic.
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "auth.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	weft_tokens a, b;
	char        err[256], err2[256];
	weft_err    ra, rb;

	if (sodium_init() < 0) {
		abort();
	}
	err[0] = err2[0] = '\0';
	ra = weft_tokens_parse(&a, (const char *) data, size, "f", err,
	    sizeof(err));
	rb = weft_tokens_parse(&b, (const char *) data, size, "f", err2,
	    sizeof(err2));
	if (ra != rb || strcmp(err, err2) != 0) {
		abort(); // not deterministic
	}
	if (ra != WEFT_OK) {
		if (ra != WEFT_EINVAL || strncmp(err, "f", 1) != 0 || a.n != 0 ||
		    a.list != NULL) {
			abort();
		}
		return (0);
	}
	if (a.n == 0 || a.n > WEFT_AUTH_MAX || a.n != b.n) {
		abort();
	}
	for (size_t i = 0; i < a.n; i++) {
		size_t len = strlen(a.list[i].name);
		if (len == 0 || len > WEFT_AUTH_NAME_MAX ||
		    (a.list[i].role != WEFT_ROLE_READ &&
		        a.list[i].role != WEFT_ROLE_OPERATE) ||
		    memcmp(a.list[i].hash, b.list[i].hash, 32) != 0) {
			abort();
		}
	}
	// Bytes of the input are never a token of the file unless the file
	// says so; looking them up must at least not crash.
	(void) weft_tokens_find(&a, (const char *) data,
	    size < WEFT_AUTH_TOKEN_MAX ? size : WEFT_AUTH_TOKEN_MAX);
	weft_tokens_fini(&a);
	weft_tokens_fini(&b);
	return (0);
}
