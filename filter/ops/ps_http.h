/*
 * ps_http: the operations port (libmicrohttpd; the only layer that includes
 * microhttpd.h).
 *
 *   GET /metrics   the registry's Prometheus text (ps_metrics_render)
 *   GET /healthz   200 "ok" when the poll loop ticked within health_timeout_ms,
 *                  503 otherwise: it never asks the brokers, so a Kafka outage
 *                  does not become a restart storm
 *   GET /readyz    200 "ready" when partitions are assigned and the keyring and
 *                  opt-out state are loaded, 503 with what is missing otherwise
 *
 * Anything else is 404; a method other than GET or HEAD is 405. Responses never
 * carry a payload value, identifier or secret: only counts and our own names.
 *
 * The server answers on its own thread (libmicrohttpd's internal polling
 * thread); it reads the registry with atomic loads, so it never blocks the
 * pipeline.
 */
#ifndef PS_HTTP_H
#define PS_HTTP_H

#include <stdint.h>

#include "ps_error.h"
#include "ps_metrics.h"

struct ps_http;

struct ps_http_options {
    const char *listen;          /* "host:port", "[v6]:port", ":port" or "port"; host is
                                    numeric; port 0 picks a free port (tests) */
    uint32_t health_timeout_ms;  /* /healthz fails when the last tick is older */
};

/* Binds and starts answering. m is borrowed and must outlive the server.
 * PS_ERR_CONFIG for a listen address that does not parse, PS_ERR_IO when the
 * port cannot be bound (the message names the address), PS_ERR_NOMEM. */
ps_err_t ps_http_start(const struct ps_http_options *opt, struct ps_metrics *m,
                       struct ps_http **http_p, struct ps_error *err);

/* The port actually bound (the chosen one when 0 was asked for). */
uint16_t ps_http_port(const struct ps_http *http);

/* Stops the thread, closes the socket and frees. NULL is a no-op. */
void ps_http_stop(struct ps_http *http);

/* Splits a listen address into a numeric host (empty for "any"; an IPv6
 * address only in brackets) and a port.
 * Returns 0 on success, -1 when it does not parse. Exposed for the config
 * layer's validation and for tests. */
int ps_http_parse_listen(const char *listen, char *host, size_t host_size, uint16_t *port_p);

#endif
