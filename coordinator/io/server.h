// server: the coordinator's network side — its sockets (control, results,
// cluster survey, event stream) and the HTTP server (API, dashboard,
// WebSocket stream) — around an open engine.
#ifndef WEFT_IO_SERVER_H
#define WEFT_IO_SERVER_H

#include <stddef.h>

#include "engine.h"

// weft_server_open binds every socket the engine's configuration names
// and registers itself as the engine's io (engine/io.h). Before
// weft_engine_start. On failure err (errlen bytes) says what and where.
weft_err weft_server_open(weft_engine *e, char *err, size_t errlen);

// weft_server_start starts receiving and surveying. After
// weft_engine_start.
weft_err weft_server_start(weft_engine *e);

// weft_server_close stops and closes everything it opened; after
// weft_engine_stop, before weft_engine_close. Fine when never opened.
void weft_server_close(weft_engine *e);

#endif
