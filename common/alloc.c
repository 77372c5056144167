// alloc: aborting allocators and the always-on assertion.
#include "alloc.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"

static void
alloc_oom(size_t size)
{
	weft_log_err("OOM", "allocation of %zu bytes failed", size);
	abort();
}

void *
weft_xalloc(size_t size)
{
	void *p = calloc(1, size ? size : 1);
	if (p == NULL) {
		alloc_oom(size);
	}
	return (p);
}

void *
weft_xrealloc(void *p, size_t size)
{
	void *q = realloc(p, size ? size : 1);
	if (q == NULL) {
		alloc_oom(size);
	}
	return (q);
}

char *
weft_xstrdup(const char *s)
{
	return (s == NULL ? NULL : weft_xstrndup(s, strlen(s)));
}

char *
weft_xstrndup(const char *s, size_t n)
{
	char  *p;
	size_t len = strnlen(s, n);

	p = weft_xalloc(len + 1);
	memcpy(p, s, len);
	return (p);
}

void
weft_assert_fail(const char *what, const char *file, int line)
{
	weft_log_err("ASSERT", "assertion failed: %s at %s:%d", what, file, line);
	abort();
}
