// server: the coordinator's network side — its sockets (control, results,
// cluster survey, event stream) and the HTTP server (API, dashboard,
// WebSocket stream) — around an open engine.
#ifndef WEFT_IO_SERVER_H
#define WEFT_IO_SERVER_H

#include <stddef.h>

#include "engine.h"

typedef struct weft_server weft_server;

// The addresses a server is bound to: the configured ones, with the port
// the kernel chose wherever port 0 was asked for. Valid until close.
typedef struct weft_server_addrs {
	const char *control;
	const char *cluster;
	const char *results;
	const char *events;
	const char *http; // HOST:PORT, "" when HTTP is off
} weft_server_addrs;

// weft_server_open binds every socket the engine's configuration names,
// loads the dashboard, and registers itself as the engine's io
// (engine/io.h). Before weft_engine_start. On failure *out is NULL and err
// (errlen bytes) says what and where.
weft_err weft_server_open(
    weft_server **out, weft_engine *e, char *err, size_t errlen);

// weft_server_start starts receiving and surveying. After
// weft_engine_start.
weft_err weft_server_start(weft_server *s);

// weft_server_bound fills in the bound addresses.
void weft_server_bound(const weft_server *s, weft_server_addrs *out);

// weft_server_close stops and frees everything it opened: after
// weft_engine_stop, before weft_engine_close. NULL is fine.
void weft_server_close(weft_server *s);

#endif
