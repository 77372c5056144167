// cookie: reading, creating and deriving keys from the cluster cookie.
#include "cookie.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "log.h"

int
weft_crypto_init(void)
{
	return (sodium_init() < 0 ? -1 : 0);
}

void
weft_home_path(const char *rel, char *out, size_t len)
{
	const char *env;

	if ((env = getenv("WEFT_HOME")) != NULL && env[0] != '\0') {
		snprintf(out, len, "%s/%s", env, rel);
	} else {
		env = getenv("HOME");
		snprintf(out, len, "%s/.weft/%s",
		    env != NULL && env[0] != '\0' ? env : ".", rel);
	}
}

void
weft_cookie_path(const char *given, char *out, size_t len)
{
	const char *env;

	if (given != NULL && given[0] != '\0') {
		snprintf(out, len, "%s", given);
	} else if ((env = getenv("WEFT_COOKIE_FILE")) != NULL && env[0] != '\0') {
		snprintf(out, len, "%s", env);
	} else {
		weft_home_path("cookie", out, len);
	}
}

void
weft_mkdir_parents(const char *path)
{
	char dir[4096];

	snprintf(dir, sizeof(dir), "%s", path);
	for (char *p = dir + 1; *p != '\0'; p++) {
		if (*p == '/') {
			*p = '\0';
			(void) mkdir(dir, 0700);
			*p = '/';
		}
	}
}

// cookie_create writes a new cookie under a temporary name and links it
// into place: link fails if another node got there first, and then that
// node's cookie is the cluster's.
static weft_err
cookie_create(const char *path, char *err, size_t errlen)
{
	uint8_t raw[32];
	char    hex[2 * sizeof(raw) + 2];
	char    tmp[4200];
	int     fd;
	ssize_t n;

	weft_mkdir_parents(path);
	randombytes_buf(raw, sizeof(raw));
	sodium_bin2hex(hex, sizeof(hex), raw, sizeof(raw));
	sodium_memzero(raw, sizeof(raw));
	strcat(hex, "\n");
	snprintf(tmp, sizeof(tmp), "%s.%ld.tmp", path, (long) getpid());
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) <
	    0) {
		snprintf(err, errlen, "cannot create cookie file %s: %s", tmp,
		    strerror(errno));
		return (WEFT_EIO);
	}
	n = write(fd, hex, strlen(hex));
	sodium_memzero(hex, sizeof(hex));
	if (n != (ssize_t) (2 * sizeof(raw) + 1) || fsync(fd) != 0) {
		snprintf(err, errlen, "cannot write cookie file %s: %s", tmp,
		    n < 0 ? strerror(errno) : "short write");
		close(fd);
		unlink(tmp);
		return (WEFT_EIO);
	}
	close(fd);
	if (link(tmp, path) != 0 && errno != EEXIST) {
		snprintf(err, errlen, "cannot create cookie file %s: %s", path,
		    strerror(errno));
		unlink(tmp);
		return (WEFT_EIO);
	}
	unlink(tmp);
	return (WEFT_OK);
}

weft_err
weft_file_private(int fd, const char *what, const char *path, char *err,
    size_t errlen)
{
	struct stat st;

	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s %s is not a regular file", what, path);
		return (WEFT_EINVAL);
	}
	if ((st.st_mode & 077) != 0) {
		snprintf(err, errlen,
		    "%s %s is accessible by group or others (mode %03o): "
		    "chmod 600 it",
		    what, path, (unsigned) (st.st_mode & 0777));
		return (WEFT_EAUTH);
	}
	return (WEFT_OK);
}

weft_err
weft_cookie_load(weft_cookie *c, const char *path, bool create, char *err,
    size_t errlen)
{
	int         fd;
	ssize_t     n;
	weft_err    rv;

	memset(c, 0, sizeof(*c));
	snprintf(c->path, sizeof(c->path), "%s", path);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0 &&
	    errno == ENOENT && create) {
		if ((rv = cookie_create(path, err, errlen)) != WEFT_OK) {
			return (rv);
		}
		c->created = true;
		fd         = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	}
	if (fd < 0) {
		snprintf(err, errlen,
		    errno == ENOENT
		        ? "no cluster cookie at %s: copy the coordinator's cookie "
		          "file there (mode 0600), or name it with --cookie-file"
		        : "cannot open cookie file %s: %s",
		    path, strerror(errno));
		return (errno == ENOENT ? WEFT_ENOENT : WEFT_EIO);
	}
	if ((rv = weft_file_private(fd, "cookie file", path, err, errlen)) !=
	    WEFT_OK) {
		close(fd);
		return (rv);
	}
	n = read(fd, c->key, sizeof(c->key));
	close(fd);
	if (n < 0) {
		snprintf(err, errlen, "cannot read cookie file %s: %s", path,
		    strerror(errno));
		return (WEFT_EIO);
	}
	c->len = (size_t) n;
	if (c->len == sizeof(c->key)) {
		snprintf(err, errlen, "cookie file %s is longer than %d bytes",
		    path, WEFT_COOKIE_MAX - 1);
		weft_cookie_clear(c);
		return (WEFT_EINVAL);
	}
	if (c->len > 0 && c->key[c->len - 1] == '\n') {
		c->len--;
	}
	if (c->len > 0 && c->key[c->len - 1] == '\r') {
		c->len--;
	}
	if (c->len < WEFT_COOKIE_MIN) {
		snprintf(err, errlen,
		    "cookie in %s is %zu bytes: at least %d are needed", path,
		    c->len, WEFT_COOKIE_MIN);
		weft_cookie_clear(c);
		return (WEFT_EINVAL);
	}
	return (WEFT_OK);
}

weft_err
weft_cookie_for_node(weft_cookie *c, const char *given, bool local,
    bool insecure, bool *have, char *err, size_t errlen)
{
	char     path[4096];
	weft_err rv;

	*have = false;
	weft_cookie_path(given, path, sizeof(path));
	rv = weft_cookie_load(c, path, local, err, errlen);
	if (rv == WEFT_OK) {
		*have = true;
		if (c->created) {
			weft_log_notice("COOKIE-CREATED",
			    "path=%s: the cluster cookie; nodes on other machines "
			    "need a copy (mode 0600)",
			    path);
		}
		return (WEFT_OK);
	}
	if (rv == WEFT_ENOENT && insecure) {
		weft_log_warn("INSECURE",
		    "no cluster cookie (%s): messages between nodes are NOT "
		    "authenticated; anyone who reaches a port can join, forge "
		    "results and read step inputs",
		    path);
		return (WEFT_OK);
	}
	if (rv == WEFT_ENOENT) {
		size_t n = strlen(err);
		snprintf(err + n, errlen - n,
		    " (a node listening or dialling off loopback needs the "
		    "cluster's cookie; --insecure runs without one)");
	}
	return (rv);
}

void
weft_cookie_derive(const weft_cookie *c, const char *purpose,
    uint8_t out[WEFT_KEY_LEN])
{
	crypto_auth_hmacsha256_state st;

	crypto_auth_hmacsha256_init(&st, c->key, c->len);
	crypto_auth_hmacsha256_update(&st, (const uint8_t *) "weft:", 5);
	crypto_auth_hmacsha256_update(&st, (const uint8_t *) purpose,
	    strlen(purpose));
	crypto_auth_hmacsha256_final(&st, out);
	sodium_memzero(&st, sizeof(st));
}

void
weft_cookie_clear(weft_cookie *c)
{
	sodium_memzero(c->key, sizeof(c->key));
	c->len = 0;
}
