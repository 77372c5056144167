// pgcut: a relay in front of a test PostgreSQL server (pg.h) that can
// lose the answer to a COMMIT: the server commits, the client never hears
// it, its connection breaks. What a network cut at the wrong moment does,
// made to happen on purpose, once, at a chosen transaction.
//
// The relay listens on a Unix socket in a directory of its own and
// forwards every connection to the server's socket, byte for byte. It
// reads the client's messages (PostgreSQL's frontend protocol: the
// untyped startup packet, then type byte and length) to find a COMMIT,
// sent as a simple query or as a Parse; nothing else is changed.
#ifndef WEFT_TEST_PGCUT_H
#define WEFT_TEST_PGCUT_H

#include <stddef.h>

#include "pg.h"

typedef struct weft_pgcut weft_pgcut;

// weft_pgcut_start starts a relay to pg's server and writes into url
// (len) the URL of database db through it. Returns the relay, or NULL
// after printing why on stderr.
weft_pgcut *weft_pgcut_start(const weft_pg *pg, const char *db, char *url,
    size_t len);

// weft_pgcut_arm makes the relay cut the first transaction, from now on,
// whose messages carry the bytes needle (borrowed; copied) before its
// COMMIT: the COMMIT reaches the server, the relay waits for the server's
// answer to it, drops that answer and closes both sides. Once.
void weft_pgcut_arm(weft_pgcut *c, const char *needle);

// weft_pgcut_fired returns how many commits the relay cut.
int weft_pgcut_fired(weft_pgcut *c);

// weft_pgcut_stop closes every connection, stops the relay and removes
// its directory. NULL is fine.
void weft_pgcut_stop(weft_pgcut *c);

#endif // WEFT_TEST_PGCUT_H
