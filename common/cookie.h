// cookie: the cluster's shared secret, like Erlang's .erlang.cookie.
//
// Every node of a cluster reads the same cookie file; the key is the
// file's content without a trailing newline. From it come the key of the
// HMAC every node-to-node message carries (weft_cookie_derive "wire") and
// the key secrets are stored under ("secrets").
#ifndef WEFT_COOKIE_H
#define WEFT_COOKIE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define WEFT_COOKIE_MIN 32   // shortest key accepted, bytes
#define WEFT_COOKIE_MAX 1024 // longest key accepted, bytes
#define WEFT_KEY_LEN 32      // derived keys

typedef struct weft_cookie {
	uint8_t key[WEFT_COOKIE_MAX];
	size_t  len;
	char    path[4096];
	bool    created; // this process made the file
} weft_cookie;

// weft_home_path fills out (len bytes) with rel (borrowed) under the
// node's home: $WEFT_HOME, else ~/.weft.
void weft_home_path(const char *rel, char *out, size_t len);

// weft_mkdir_parents makes the directories above path (a file's path) that
// are missing, each mode 0700 (mkdir -p); errors are the caller's to find
// when it opens the file.
void weft_mkdir_parents(const char *path);

// weft_cookie_path fills out (len bytes) with where the cookie is: given
// (when not NULL or ""), else $WEFT_COOKIE_FILE, else $WEFT_HOME/cookie,
// else ~/.weft/cookie.
void weft_cookie_path(const char *given, char *out, size_t len);

// weft_cookie_load reads the cookie at path into *c. A missing file is
// created when create is set (64 hex characters from 32 random bytes, mode
// 0600, its directory made 0700 if missing; atomically, so two nodes
// starting at once agree on one cookie) and is an error otherwise. A file
// readable or writable by group or others, or a key shorter than
// WEFT_COOKIE_MIN, is refused. On error err says what and where.
weft_err weft_cookie_load(weft_cookie *c, const char *path, bool create,
    char *err, size_t errlen);

// weft_cookie_for_node loads the cookie a node (coordinator or worker)
// runs with, at weft_cookie_path(given). When every socket the node opens
// is on loopback (local) a missing cookie is created. Off loopback a
// missing one is an error, unless insecure: then *have is false, a warning
// is logged and the node runs without authentication. Any other problem
// (mode, length) is an error either way.
weft_err weft_cookie_for_node(weft_cookie *c, const char *given, bool local,
    bool insecure, bool *have, char *err, size_t errlen);

// weft_file_private checks that fd (open, of the file at path) is a
// regular file nobody but its owner can read or write, as a file holding a
// key must be; err names it as `what` ("cookie file", "token file"). On
// failure fd is left open.
weft_err weft_file_private(int fd, const char *what, const char *path,
    char *err, size_t errlen);

// weft_cookie_derive writes the WEFT_KEY_LEN-byte key for purpose:
// HMAC-SHA256(cookie, "weft:" purpose). Different purposes give unrelated
// keys, so a key used for one job never serves another.
void weft_cookie_derive(const weft_cookie *c, const char *purpose,
    uint8_t out[WEFT_KEY_LEN]);

// weft_cookie_clear wipes the key from memory.
void weft_cookie_clear(weft_cookie *c);

// weft_crypto_init initialises the crypto library once; 0 on success.
int weft_crypto_init(void);

#endif
