// tls: encryption in transit, in one place. The files given with
// --tls-cert, --tls-key and --tls-ca are read and checked once
// (weft_tls_open) into three nng TLS configurations:
//
//   listener  our certificate; with a CA, every peer must present a
//             certificate signed by it (NNG_TLS_AUTH_MODE_REQUIRED)
//   dialer    our certificate (for the peer's check); with a CA, the
//             peer's certificate must be signed by it
//   http      our certificate, no client certificate asked for: browsers
//             and curl reach the dashboard and API over https://
//
// Every listen and dial site calls weft_tls_listener / weft_tls_dialer
// between nng_*_create and nng_*_start; they do nothing for a URL that does
// not ask for TLS (tls+tcp://, wss://) and refuse one that does when no
// certificate was given. A TLS peer is identified by its CA only: host
// names are not matched (the mbedTLS nng 1.5.2 uses cannot match IP
// subjectAltNames), so the CA is the cluster's membership list.
#ifndef WEFT_TLS_H
#define WEFT_TLS_H

#include <stdbool.h>
#include <stddef.h>

#include <nng/nng.h>
#include <nng/supplemental/http/http.h>

#include "err.h"

typedef struct weft_tls weft_tls;

// weft_tls_open reads cert, key and ca (paths, borrowed; NULL or "" for
// none) and builds the configurations. With none of them *out is NULL and
// TLS is off (a TLS URL is then refused). A certificate needs its key and
// the other way round; a CA needs both. Every file is checked now: it must
// be readable PEM, the key must match the certificate, and with a CA the
// certificate must be signed by it and valid today. On error err names
// the flag and the file. Starts a thread that logs failed handshakes;
// free with weft_tls_close.
weft_err weft_tls_open(weft_tls **out, const char *cert, const char *key,
    const char *ca, char *err, size_t errlen);

// weft_tls_close frees t (NULL is fine). After every socket using it is
// closed, before nng_fini.
void weft_tls_close(weft_tls *t);

// weft_tls_url reports whether url asks for TLS: tls+tcp[46]:// or
// wss[46]://.
bool weft_tls_url(const char *url);

// weft_tls_mutual reports whether peers must present a certificate
// (a CA was given).
bool weft_tls_mutual(const weft_tls *t);

// weft_tls_listener gives listener l (created on url, not started) the
// listener configuration when url asks for TLS; nothing otherwise. t may
// be NULL (TLS off): a TLS url is then an error naming the flags to give.
// l is watched: failed handshakes on it are logged.
weft_err weft_tls_listener(weft_tls *t, nng_listener l,
    const char *url, char *err, size_t errlen);

// weft_tls_dialer is weft_tls_listener for a dialer.
weft_err weft_tls_dialer(weft_tls *t, nng_dialer d, const char *url,
    char *err, size_t errlen);

// weft_tls_http gives HTTP server s (held for an https:// URL, not
// started) the http configuration. t must not be NULL.
weft_err weft_tls_http(const weft_tls *t, nng_http_server *s, char *err,
    size_t errlen);

// weft_tls_http_listener gives the wss:// listener l that shares the
// HTTP server the same http configuration (the ws transport passes it to
// that server; the listener configuration would ask browsers for a
// certificate).
weft_err weft_tls_http_listener(weft_tls *t, nng_listener l,
    const char *url, char *err, size_t errlen);

#endif
