// auth: the API token file, roles, and the loopback rule.
#include "auth.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "alloc.h"
#include "cookie.h"

#define AUTH_FILE_MAX (1024u * 1024u) // a token file larger than this is refused

const char *
weft_role_name(enum weft_role r)
{
	switch (r) {
	case WEFT_ROLE_READ:
		return ("read");
	case WEFT_ROLE_OPERATE:
		return ("operate");
	default:
		return ("none");
	}
}

static void
auth_hash(const char *tok, size_t len, uint8_t out[32])
{
	crypto_generichash(out, 32, (const uint8_t *) tok, len, NULL, 0);
}

// auth_name_ok: names appear in logs and in /whoami, so they are plain.
static bool
auth_name_ok(const char *s, size_t n)
{
	if (n == 0 || n > WEFT_AUTH_NAME_MAX) {
		return (false);
	}
	for (size_t i = 0; i < n; i++) {
		char ch = s[i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		        (ch >= '0' && ch <= '9') || ch == '_' || ch == '-' ||
		        ch == '.' || ch == '@')) {
			return (false);
		}
	}
	return (true);
}

// auth_field cuts the next blank-separated field of [*p, end).
static bool
auth_field(const char **p, const char *end, const char **f, size_t *n)
{
	const char *s = *p;

	while (s < end && (*s == ' ' || *s == '\t')) {
		s++;
	}
	*f = s;
	while (s < end && *s != ' ' && *s != '\t') {
		s++;
	}
	*n = (size_t) (s - *f);
	*p = s;
	return (*n > 0);
}

// auth_line parses one non-comment line into tk; NULL or the problem.
static const char *
auth_line(const char *s, const char *end, weft_token *tk)
{
	const char *name, *role, *tok, *extra;
	size_t      nn, nr, nt, ne;

	if (!auth_field(&s, end, &name, &nn) || !auth_field(&s, end, &role, &nr) ||
	    !auth_field(&s, end, &tok, &nt)) {
		return ("want NAME ROLE TOKEN");
	}
	if (auth_field(&s, end, &extra, &ne)) {
		return ("want NAME ROLE TOKEN: extra text after the token");
	}
	if (!auth_name_ok(name, nn)) {
		return ("NAME must be 1-64 letters, digits or _ - . @");
	}
	if (nr == 4 && strncmp(role, "read", 4) == 0) {
		tk->role = WEFT_ROLE_READ;
	} else if (nr == 7 && strncmp(role, "operate", 7) == 0) {
		tk->role = WEFT_ROLE_OPERATE;
	} else {
		return ("ROLE must be read or operate");
	}
	if (nt < WEFT_AUTH_TOKEN_MIN) {
		return ("TOKEN is too short: at least 16 characters");
	}
	if (nt > WEFT_AUTH_TOKEN_MAX) {
		return ("TOKEN is too long: at most 512 characters");
	}
	for (size_t i = 0; i < nt; i++) {
		if ((unsigned char) tok[i] < 0x21 || (unsigned char) tok[i] > 0x7e) {
			return ("TOKEN must be printable ASCII without spaces");
		}
	}
	memcpy(tk->name, name, nn);
	tk->name[nn] = '\0';
	auth_hash(tok, nt, tk->hash);
	return (NULL);
}

// auth_dup says whether tk repeats a name or a token of the list.
static const char *
auth_dup(const weft_tokens *t, const weft_token *tk)
{
	for (size_t i = 0; i < t->n; i++) {
		if (strcmp(t->list[i].name, tk->name) == 0) {
			return ("NAME is used twice");
		}
		if (memcmp(t->list[i].hash, tk->hash, 32) == 0) {
			return ("the same TOKEN is listed twice");
		}
	}
	return (NULL);
}

weft_err
weft_tokens_parse(weft_tokens *t, const char *text, size_t len,
    const char *what, char *err, size_t errlen)
{
	const char *p = text, *end = text + len;
	unsigned    line = 0;

	memset(t, 0, sizeof(*t));
	if (memchr(text, '\0', len) != NULL) {
		snprintf(err, errlen, "%s: contains a NUL byte", what);
		return (WEFT_EINVAL);
	}
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t) (end - p));
		const char *le = nl != NULL ? nl : end;
		const char *s  = p, *why;
		weft_token  tk;

		line++;
		p = nl != NULL ? nl + 1 : end;
		if (le > s && le[-1] == '\r') {
			le--;
		}
		while (s < le && (*s == ' ' || *s == '\t')) {
			s++;
		}
		if (s == le || *s == '#') {
			continue;
		}
		memset(&tk, 0, sizeof(tk));
		if ((why = auth_line(s, le, &tk)) == NULL) {
			why = auth_dup(t, &tk);
		}
		if (why == NULL && t->n >= WEFT_AUTH_MAX) {
			why = "too many tokens";
		}
		if (why != NULL) {
			snprintf(err, errlen, "%s:%u: %s", what, line, why);
			sodium_memzero(&tk, sizeof(tk));
			weft_tokens_fini(t);
			return (WEFT_EINVAL);
		}
		t->list         = weft_xrealloc(t->list, (t->n + 1) * sizeof(tk));
		t->list[t->n++] = tk;
	}
	if (t->n == 0) {
		snprintf(err, errlen, "%s: no tokens (want lines NAME ROLE TOKEN)",
		    what);
		return (WEFT_EINVAL);
	}
	return (WEFT_OK);
}

weft_err
weft_tokens_load(weft_tokens *t, const char *path, char *err, size_t errlen)
{
	struct stat st;
	int         fd;
	char       *buf;
	ssize_t     n;
	weft_err    rv;

	memset(t, 0, sizeof(*t));
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		snprintf(err, errlen, "cannot open token file %s: %s", path,
		    strerror(errno));
		return (WEFT_EIO);
	}
	if ((rv = weft_file_private(fd, "token file", path, err, errlen)) !=
	    WEFT_OK) {
		close(fd);
		return (rv);
	}
	(void) fstat(fd, &st); // it succeeded just now: the size

	if ((size_t) st.st_size > AUTH_FILE_MAX) {
		snprintf(err, errlen, "token file %s is larger than 1 MiB", path);
		close(fd);
		return (WEFT_EINVAL);
	}
	buf = weft_xalloc((size_t) st.st_size + 1);
	n   = read(fd, buf, (size_t) st.st_size);
	close(fd);
	if (n < 0) {
		snprintf(err, errlen, "cannot read token file %s: %s", path,
		    strerror(errno));
		free(buf);
		return (WEFT_EIO);
	}
	rv = weft_tokens_parse(t, buf, (size_t) n, path, err, errlen);
	sodium_memzero(buf, (size_t) n);
	free(buf);
	return (rv);
}

const weft_token *
weft_tokens_find(const weft_tokens *t, const char *tok, size_t len)
{
	const weft_token *found = NULL;
	uint8_t           h[32];

	if (len == 0 || len > WEFT_AUTH_TOKEN_MAX) {
		return (NULL);
	}
	// Compare hashes, not the tokens: equal lengths, constant time, and
	// every entry is looked at whichever matches.
	auth_hash(tok, len, h);
	for (size_t i = 0; i < t->n; i++) {
		if (sodium_memcmp(t->list[i].hash, h, 32) == 0) {
			found = &t->list[i];
		}
	}
	sodium_memzero(h, sizeof(h));
	return (found);
}

void
weft_tokens_fini(weft_tokens *t)
{
	if (t == NULL) {
		return;
	}
	if (t->list != NULL) {
		sodium_memzero(t->list, t->n * sizeof(*t->list));
		free(t->list);
	}
	t->list = NULL;
	t->n    = 0;
}

bool
weft_auth_host_loopback(const char *host)
{
	char h[256];
	size_t n = strlen(host);

	if (n >= 2 && host[0] == '[' && host[n - 1] == ']') {
		snprintf(h, sizeof(h), "%.*s", (int) (n - 2), host + 1);
	} else {
		snprintf(h, sizeof(h), "%s", host);
	}
	if (strcasecmp(h, "localhost") == 0 || strcmp(h, "::1") == 0) {
		return (true);
	}
	// 127.0.0.0/8, written as a dotted quad.
	if (strncmp(h, "127.", 4) == 0) {
		unsigned a, b, c, d;
		char     tail;
		return (sscanf(h, "%u.%u.%u.%u%c", &a, &b, &c, &d, &tail) == 4 &&
		    a == 127 && b < 256 && c < 256 && d < 256);
	}
	return (false);
}

bool
weft_auth_addr_loopback(const char *addr)
{
	const char *s = addr, *sep, *end;
	char        host[256];

	if (strncmp(s, "ipc://", 6) == 0 || strncmp(s, "inproc://", 9) == 0) {
		return (true);
	}
	if ((sep = strstr(s, "://")) != NULL) {
		s = sep + 3;
	}
	end = s + strcspn(s, "/");
	if (*s == '[') {
		const char *rb = memchr(s, ']', (size_t) (end - s));
		if (rb == NULL) {
			return (false);
		}
		snprintf(host, sizeof(host), "%.*s", (int) (rb + 1 - s), s);
	} else {
		const char *colon = s;
		const char *last  = NULL;
		while ((colon = memchr(colon, ':', (size_t) (end - colon))) != NULL) {
			last = colon++;
		}
		snprintf(host, sizeof(host), "%.*s",
		    (int) ((last != NULL ? last : end) - s), s);
	}
	return (host[0] != '\0' && weft_auth_host_loopback(host));
}
