// registry: which database each path held, so that a database file that
// vanished is noticed instead of silently replaced by an empty one.
//
// $WEFT_HOME/databases is a small text file, one "KEY ID" a line: KEY a
// SQLite file's canonical path or a PostgreSQL URL (redacted, never a
// password), ID the random id the database drew when its schema was made
// (migration 0004). Written atomically (rename), mode 0600, under an
// flock so coordinators starting together do not lose each other's line.
#ifndef WEFT_STORE_REGISTRY_H
#define WEFT_STORE_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>

#include "err.h"
#include "store.h"

#define WEFT_DBREG_ID_LEN 32 // hex characters of a database id

// weft_dbreg_key writes the key url (borrowed) is recorded under into out
// (len): for SQLite the file's absolute path with its directory resolved
// (symlinks, "..": the file itself need not exist), for PostgreSQL the
// redacted URL. False for a database with no place (sqlite::memory:).
bool weft_dbreg_key(const char *url, char *out, size_t len);

// weft_dbreg_lookup reads the registry file (a missing file is empty) and
// copies the id recorded for key into id (idlen >= 33), "" when none. A
// malformed line is an error naming the file and line.
weft_err weft_dbreg_lookup(const char *file, const char *key, char *id,
    size_t idlen, char *err, size_t errlen);

// weft_dbreg_record records key -> id in file, replacing key's old line;
// creates the file (and its directory) when missing.
weft_err weft_dbreg_record(const char *file, const char *key, const char *id,
    char *err, size_t errlen);

// weft_store_open_registered opens the read-write store at url like
// weft_store_open, checked against the registry file: a SQLite path the
// registry names whose file is missing is refused ("not found; was it
// moved?"), and so is a database whose id is not the one recorded for its
// key; with init both are accepted and the new id recorded. A first open
// of a key records it. registry NULL: no check (tests, tools).
weft_err weft_store_open_registered(weft_store **out, const char *url,
    const char *registry, bool init, char *err, size_t errlen);

#endif
