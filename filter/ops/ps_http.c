#include "ps_http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <microhttpd.h>

#include "ps_log.h"

/* A scrape is a handful of short requests; a cap keeps a misbehaving client
 * from holding more than a few sockets and a little memory. */
#define HTTP_CONNECTION_LIMIT 16
#define HTTP_CONNECTION_TIMEOUT_S 10

struct ps_http {
    struct MHD_Daemon *daemon;
    struct ps_metrics *m;
    uint32_t health_timeout_ms;
    uint16_t port;
};

int ps_http_parse_listen(const char *listen, char *host, size_t host_size, uint16_t *port_p)
{
    const char *port_text = NULL;
    size_t host_len = 0;
    const char *host_start = listen;
    if (!listen || !host || host_size == 0 || !port_p) {
        return -1;
    }
    if (listen[0] == '[') {
        const char *close = strchr(listen, ']');
        if (!close || close[1] != ':') {
            return -1;
        }
        host_start = listen + 1;
        host_len = (size_t)(close - host_start);
        port_text = close + 2;
    } else {
        const char *colon = strrchr(listen, ':');
        if (colon) {
            if (strchr(listen, ':') != colon) {
                return -1; /* a bare IPv6 address needs brackets */
            }
            host_len = (size_t)(colon - listen);
            port_text = colon + 1;
        } else {
            port_text = listen;
        }
    }
    if (host_len >= host_size || port_text[0] == '\0' || strlen(port_text) > 5) {
        return -1;
    }
    unsigned long port = 0;
    for (const char *p = port_text; *p; p++) {
        if (*p < '0' || *p > '9') {
            return -1;
        }
        port = port * 10 + (unsigned long)(*p - '0');
    }
    if (port > 65535 || (port_text[0] == '0' && port_text[1] != '\0')) {
        return -1;
    }
    memcpy(host, host_start, host_len);
    host[host_len] = '\0';
    /* Numeric only: a name would need resolving, and could resolve elsewhere later. */
    unsigned char addr[sizeof(struct in6_addr)];
    if (host_len > 0 && inet_pton(listen[0] == '[' ? AF_INET6 : AF_INET, host, addr) != 1) {
        return -1;
    }
    *port_p = (uint16_t)port;
    return 0;
}

/* libmicrohttpd's messages name sockets and system calls, never request
 * content; they go through our log writer like every other library's. */
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    char line[256];
    (void)cls;
    vsnprintf(line, sizeof(line), fmt, ap);
    size_t len = strlen(line);
    while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) {
        line[--len] = '\0';
    }
    PS_WARN("http", "mhd", "%s", line);
}

static enum MHD_Result reply_static(struct MHD_Connection *conn, unsigned status,
                                    const char *body)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(strlen(body), (void *)body,
                                                                MHD_RESPMEM_PERSISTENT);
    if (!resp) {
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; charset=utf-8");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    enum MHD_Result ret = MHD_queue_response(conn, status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static enum MHD_Result reply_metrics(struct ps_http *http, struct MHD_Connection *conn)
{
    char *text = NULL;
    size_t len = 0;
    /* One scrape allocates its text: scrapes are rare next to events and the
     * size depends on the number of series, so nothing is kept between them. */
    FILE *out = open_memstream(&text, &len);
    if (!out) {
        return reply_static(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
    }
    ps_err_t rc = ps_metrics_render(http->m, out, NULL);
    if (fclose(out) != 0 || rc != PS_OK || !text) {
        free(text);
        return reply_static(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "could not render metrics\n");
    }
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(text);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                            "text/plain; version=0.0.4; charset=utf-8");
    enum MHD_Result ret = MHD_queue_response(conn, MHD_HTTP_OK, resp);
    MHD_destroy_response(resp);
    return ret;
}

static enum MHD_Result reply_ready(struct ps_http *http, struct MHD_Connection *conn)
{
    /* The reasons are static strings, so they can be sent without a copy. */
    static const char *const bodies[][2] = {
        {"keyring not loaded", "not ready: keyring not loaded\n"},
        {"opt-out state not loaded", "not ready: opt-out state not loaded\n"},
        {"no partitions assigned", "not ready: no partitions assigned\n"},
    };
    const char *why = NULL;
    if (ps_metrics_ready(http->m, &why)) {
        return reply_static(conn, MHD_HTTP_OK, "ready\n");
    }
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        if (why && strcmp(why, bodies[i][0]) == 0) {
            return reply_static(conn, MHD_HTTP_SERVICE_UNAVAILABLE, bodies[i][1]);
        }
    }
    return reply_static(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "not ready\n");
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url,
                              const char *method, const char *version, const char *upload_data,
                              size_t *upload_data_size, void **con_cls)
{
    struct ps_http *http = cls;
    (void)version;
    (void)upload_data;
    (void)con_cls;
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0) {
        /* Answer at once and let libmicrohttpd discard any body. */
        *upload_data_size = 0;
        return reply_static(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed\n");
    }
    if (strcmp(url, "/metrics") == 0) {
        return reply_metrics(http, conn);
    }
    if (strcmp(url, "/healthz") == 0) {
        if (ps_metrics_live(http->m, http->health_timeout_ms)) {
            return reply_static(conn, MHD_HTTP_OK, "ok\n");
        }
        return reply_static(conn, MHD_HTTP_SERVICE_UNAVAILABLE,
                            "unhealthy: the poll loop has not ticked recently\n");
    }
    if (strcmp(url, "/readyz") == 0) {
        return reply_ready(http, conn);
    }
    return reply_static(conn, MHD_HTTP_NOT_FOUND, "not found\n");
}

ps_err_t ps_http_start(const struct ps_http_options *opt, struct ps_metrics *m,
                       struct ps_http **http_p, struct ps_error *err)
{
    char host[64];
    uint16_t port = 0;
    struct sockaddr_storage addr;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ERROR_LOG;

    if (!opt || !m || !http_p) {
        return ps_error_set(err, PS_ERR_INVALID, "ps_http_start: opt, m and http_p are required");
    }
    if (!opt->listen || ps_http_parse_listen(opt->listen, host, sizeof(host), &port) != 0) {
        return ps_error_set(err, PS_ERR_CONFIG,
                            "metrics.listen must be [host:]port with a numeric host "
                            "(e.g. 0.0.0.0:9464, [::]:9464 or 9464)");
    }
    memset(&addr, 0, sizeof(addr));
    if (strchr(host, ':')) {
        struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&addr;
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons(port);
        if (inet_pton(AF_INET6, host, &a6->sin6_addr) != 1) {
            return ps_error_set(err, PS_ERR_CONFIG,
                                "metrics.listen: '%s' is not a numeric IPv6 address", host);
        }
        flags |= MHD_USE_IPv6;
    } else {
        struct sockaddr_in *a4 = (struct sockaddr_in *)&addr;
        a4->sin_family = AF_INET;
        a4->sin_port = htons(port);
        if (host[0] == '\0') {
            a4->sin_addr.s_addr = htonl(INADDR_ANY);
        } else if (inet_pton(AF_INET, host, &a4->sin_addr) != 1) {
            return ps_error_set(err, PS_ERR_CONFIG,
                                "metrics.listen: '%s' is not a numeric IPv4 address", host);
        }
    }

    struct ps_http *http = calloc(1, sizeof(*http));
    if (!http) {
        return ps_error_set(err, PS_ERR_NOMEM, "metrics: out of memory");
    }
    http->m = m;
    http->health_timeout_ms = opt->health_timeout_ms;
    errno = 0;
    http->daemon = MHD_start_daemon(
        flags, port, NULL, NULL, handle, http, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)HTTP_CONNECTION_LIMIT, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)HTTP_CONNECTION_TIMEOUT_S, MHD_OPTION_END);
    if (!http->daemon) {
        int saved = errno;
        free(http);
        return ps_error_set(err, PS_ERR_IO, "metrics: cannot listen on %s: %s", opt->listen,
                            saved ? strerror(saved) : "the port is in use or not permitted");
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(http->daemon,
                                                           MHD_DAEMON_INFO_BIND_PORT);
    http->port = info ? info->port : port;
    *http_p = http;
    return PS_OK;
}

uint16_t ps_http_port(const struct ps_http *http)
{
    return http ? http->port : 0;
}

void ps_http_stop(struct ps_http *http)
{
    if (!http) {
        return;
    }
    MHD_stop_daemon(http->daemon);
    free(http);
}
