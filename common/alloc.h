// alloc: allocation that aborts on out-of-memory, so callers need no ENOMEM
// branches.
#ifndef WEFT_ALLOC_H
#define WEFT_ALLOC_H

#include <stddef.h>

// weft_xalloc returns zeroed memory of size bytes; free with free().
void *weft_xalloc(size_t size);

// weft_xrealloc resizes p; aborts on failure.
void *weft_xrealloc(void *p, size_t size);

// weft_xstrdup copies s (NULL gives NULL); free with free().
char *weft_xstrdup(const char *s);

// weft_xstrndup copies at most n bytes of s and terminates the copy.
char *weft_xstrndup(const char *s, size_t n);

// WEFT_ASSERT stays on in release builds: log file:line, then abort.
#define WEFT_ASSERT(x)                                              \
	do {                                                        \
		if (!(x)) {                                         \
			weft_assert_fail(#x, __FILE__, __LINE__);   \
		}                                                   \
	} while (0)

void weft_assert_fail(const char *what, const char *file, int line)
    __attribute__((noreturn));

#endif
