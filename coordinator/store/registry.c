// registry: $WEFT_HOME/databases, the record of which database each path
// held (see registry.h), and opening a store checked against it.
// realpath is XSI, beyond _POSIX_C_SOURCE.
#define _XOPEN_SOURCE 700
#include "registry.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alloc.h"
#include "log.h"

// Lines longer than this are malformed (a path is at most PATH_MAX).
#define DBREG_LINE_MAX (PATH_MAX + 128)

static const char *
dbreg_sqlite_path(const char *url)
{
	return (strncmp(url, "sqlite:", 7) == 0 ? url + 7 : url);
}

bool
weft_dbreg_key(const char *url, char *out, size_t len)
{
	const char *path;
	char        dir[PATH_MAX], real[PATH_MAX];
	const char *slash, *base;

	if (weft_store_is_pg(url)) {
		weft_store_redact(url, out, len);
		return (true);
	}
	path = dbreg_sqlite_path(url);
	if (path[0] == '\0' || strcmp(path, ":memory:") == 0 ||
	    strncmp(path, "file:", 5) == 0) {
		return (false);
	}
	// The directory is resolved, not the file: the file may be missing,
	// which is exactly the case to recognise.
	slash = strrchr(path, '/');
	if (slash == NULL) {
		snprintf(dir, sizeof(dir), ".");
		base = path;
	} else if (slash == path) {
		snprintf(dir, sizeof(dir), "/");
		base = slash + 1;
	} else {
		snprintf(dir, sizeof(dir), "%.*s", (int) (slash - path), path);
		base = slash + 1;
	}
	if (realpath(dir, real) == NULL) {
		snprintf(out, len, "%s", path); // opening will say what is wrong
	} else {
		snprintf(out, len, "%s%s%s", real,
		    strcmp(real, "/") == 0 ? "" : "/", base);
	}
	return (true);
}

// dbreg_id_ok tells whether s is a database id: 32 lowercase hex digits.
static bool
dbreg_id_ok(const char *s)
{
	size_t n = 0;

	for (; s[n] != '\0'; n++) {
		if (!((s[n] >= '0' && s[n] <= '9') || (s[n] >= 'a' && s[n] <= 'f'))) {
			return (false);
		}
	}
	return (n == WEFT_DBREG_ID_LEN);
}

// dbreg_parse splits line (changed in place) into key and id. Returns
// false when it is malformed; *key NULL for a blank or comment line.
static bool
dbreg_parse(char *line, char **key, char **id)
{
	size_t n = strlen(line);
	char  *sp;

	*key = *id = NULL;
	while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) {
		line[--n] = '\0';
	}
	if (n == 0 || line[0] == '#') {
		return (true);
	}
	// The id is the last word: a path may hold spaces, an id never.
	if ((sp = strrchr(line, ' ')) == NULL || sp == line) {
		return (false);
	}
	*sp = '\0';
	*key = line;
	*id  = sp + 1;
	return (dbreg_id_ok(*id));
}

// dbreg_read calls fn for each record of file (a missing file has none).
// Stops at the first malformed line with an error naming it.
static weft_err
dbreg_read(const char *file, void (*fn)(void *, const char *, const char *),
    void *arg, char *err, size_t errlen)
{
	FILE *f = fopen(file, "r");
	char  line[DBREG_LINE_MAX];
	int   lineno = 0;

	if (f == NULL) {
		if (errno == ENOENT || errno == ENOTDIR) {
			return (WEFT_OK); // none yet: an empty registry
		}
		snprintf(err, errlen, "cannot read %s: %s", file, strerror(errno));
		return (WEFT_EIO);
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		char *key, *id;
		lineno++;
		if (strchr(line, '\n') == NULL && !feof(f)) {
			snprintf(err, errlen, "%s:%d: line too long", file, lineno);
			fclose(f);
			return (WEFT_EINVAL);
		}
		if (!dbreg_parse(line, &key, &id)) {
			snprintf(err, errlen, "%s:%d: malformed line, want \"PATH "
			    "ID\" (ID: %d hex digits); fix or delete the line",
			    file, lineno, WEFT_DBREG_ID_LEN);
			fclose(f);
			return (WEFT_EINVAL);
		}
		if (key != NULL) {
			fn(arg, key, id);
		}
	}
	fclose(f);
	return (WEFT_OK);
}

typedef struct dbreg_find {
	const char *key;
	char       *id;
	size_t      idlen;
} dbreg_find;

static void
dbreg_find_cb(void *arg, const char *key, const char *id)
{
	dbreg_find *f = arg;
	if (strcmp(key, f->key) == 0) {
		snprintf(f->id, f->idlen, "%s", id); // the last line wins
	}
}

weft_err
weft_dbreg_lookup(const char *file, const char *key, char *id, size_t idlen,
    char *err, size_t errlen)
{
	dbreg_find f = { key, id, idlen };

	id[0] = '\0';
	return (dbreg_read(file, dbreg_find_cb, &f, err, errlen));
}

typedef struct dbreg_copy {
	FILE       *out;
	const char *skip; // the key being rewritten
} dbreg_copy;

static void
dbreg_copy_cb(void *arg, const char *key, const char *id)
{
	dbreg_copy *c = arg;
	if (strcmp(key, c->skip) != 0) {
		fprintf(c->out, "%s %s\n", key, id);
	}
}

weft_err
weft_dbreg_record(const char *file, const char *key, const char *id,
    char *err, size_t errlen)
{
	char       dir[PATH_MAX], lock[PATH_MAX + 8], tmp[PATH_MAX + 32];
	char      *slash;
	int        lfd, fd = -1;
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
	FILE      *out = NULL;
	weft_err   rv  = WEFT_EIO;
	dbreg_copy c;

	if (strchr(key, '\n') != NULL || !dbreg_id_ok(id)) {
		snprintf(err, errlen, "cannot record database %s (id \"%s\"): "
		    "a path with a newline, or not an id", key, id);
		return (WEFT_EINVAL);
	}
	snprintf(dir, sizeof(dir), "%s", file);
	if ((slash = strrchr(dir, '/')) != NULL && slash != dir) {
		*slash = '\0';
		(void) mkdir(dir, 0700);
	}
	snprintf(lock, sizeof(lock), "%s.lock", file);
	if ((lfd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) < 0 ||
	    fcntl(lfd, F_SETLKW, &fl) != 0) {
		snprintf(err, errlen, "cannot lock %s: %s", lock, strerror(errno));
		if (lfd >= 0) {
			close(lfd);
		}
		return (WEFT_EIO);
	}
	snprintf(tmp, sizeof(tmp), "%s.%ld.tmp", file, (long) getpid());
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) < 0 ||
	    (out = fdopen(fd, "w")) == NULL) {
		snprintf(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
		goto done;
	}
	fd    = -1;
	c.out = out;
	c.skip = key;
	if ((rv = dbreg_read(file, dbreg_copy_cb, &c, err, errlen)) != WEFT_OK) {
		goto done;
	}
	fprintf(out, "%s %s\n", key, id);
	if (fflush(out) != 0 || fsync(fileno(out)) != 0) {
		snprintf(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
		rv = WEFT_EIO;
		goto done;
	}
	if (rename(tmp, file) != 0) {
		snprintf(err, errlen, "cannot replace %s: %s", file,
		    strerror(errno));
		rv = WEFT_EIO;
		goto done;
	}
	rv = WEFT_OK;
done:
	if (out != NULL) {
		fclose(out);
	}
	if (fd >= 0) {
		close(fd);
	}
	if (rv != WEFT_OK) {
		unlink(tmp);
	}
	close(lfd); // releases the lock
	return (rv);
}

weft_err
weft_store_open_registered(weft_store **out, const char *url,
    const char *registry, bool init, char *err, size_t errlen)
{
	char        key[PATH_MAX + 64], had[64] = "", id[64];
	weft_store *s;
	weft_err    rv;
	struct stat st;
	bool        pg = weft_store_is_pg(url);

	*out = NULL;
	if (registry == NULL || !weft_dbreg_key(url, key, sizeof(key))) {
		return (weft_store_open(out, url, NULL, false, err, errlen));
	}
	if ((rv = weft_dbreg_lookup(registry, key, had, sizeof(had), err,
	         errlen)) != WEFT_OK) {
		return (rv);
	}
	if (!pg && had[0] != '\0' && !init &&
	    stat(dbreg_sqlite_path(url), &st) != 0 && errno == ENOENT) {
		snprintf(err, errlen,
		    "database %s not found; was it moved? `--init` creates a "
		    "new one (%s records that this path held database %s)",
		    key, registry, had);
		return (WEFT_ENOENT);
	}
	if ((rv = weft_store_open(&s, url, NULL, false, err, errlen)) != WEFT_OK) {
		return (rv);
	}
	if ((rv = weft_store_id(s, id, sizeof(id))) != WEFT_OK) {
		snprintf(err, errlen, "cannot read the id of database %s: %s",
		    key, s->error);
		weft_store_close(s);
		return (rv);
	}
	if (had[0] != '\0' && strcmp(had, id) != 0 && !init) {
		snprintf(err, errlen,
		    "database %s is not the one this %s held: its id is %s, %s "
		    "records %s; was it replaced%s? `--init` takes it as this "
		    "%s's database from now on",
		    key, pg ? "URL" : "path", id, registry, had,
		    pg ? " (dropped and created again, another server)" : "",
		    pg ? "URL" : "path");
		weft_store_close(s);
		return (WEFT_EEXIST);
	}
	if (strcmp(had, id) != 0) {
		if (weft_dbreg_record(registry, key, id, err, errlen) !=
		    WEFT_OK) {
			// A home that cannot be written (a read-only one, a
			// service user without one) costs the check, not the
			// start: the database itself is fine.
			weft_log_warn("DB-RECORD", "cannot record database %s "
			    "(id %s): %s; whether it is moved or replaced goes "
			    "unnoticed until it can be", key, id, err);
			err[0] = '\0';
		} else if (had[0] != '\0') {
			weft_log_warn("DB-INIT", "--init: %s is now database %s "
			    "(it held %s before)", key, id, had);
		} else {
			weft_log_notice("DB-RECORD", "database %s (id %s) "
			    "recorded in %s", key, id, registry);
		}
	}
	*out = s;
	return (WEFT_OK);
}
