/*
 * ps_http: the operations port answers /metrics, /healthz and /readyz from the
 * registry, refuses other methods and paths, and parses listen addresses.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "ps_http.h"
#include "ps_log.h"
#include "ps_metrics.h"

/* Sends one HTTP/1.0 request to 127.0.0.1:port; returns the status and copies
 * the body into body (NUL-terminated). */
static int request(uint16_t port, const char *method, const char *path, char *body,
                   size_t body_size)
{
    static char buf[65536];
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
    char req[256];
    int n = snprintf(req, sizeof(req), "%s %s HTTP/1.0\r\nHost: localhost\r\n\r\n", method, path);
    assert_int_equal(write(fd, req, (size_t)n), n);
    size_t len = 0;
    ssize_t got;
    while ((got = read(fd, buf + len, sizeof(buf) - 1 - len)) > 0) {
        len += (size_t)got;
    }
    close(fd);
    buf[len] = '\0';
    int status = 0;
    assert_int_equal(sscanf(buf, "HTTP/1.%*d %d", &status), 1);
    const char *start = strstr(buf, "\r\n\r\n");
    assert_non_null(start);
    snprintf(body, body_size, "%s", start + 4);
    return status;
}

static void test_endpoints(void **state)
{
    (void)state;
    static const char *const topics[] = {"hl7v2.events"};
    struct ps_metrics_labels labels = {topics, 1, NULL, 0};
    struct ps_metrics *m = NULL;
    struct ps_http *http = NULL;
    struct ps_error err;
    char body[65536];
    ps_error_clear(&err);
    assert_int_equal(ps_metrics_new(&labels, &m, &err), PS_OK);
    struct ps_http_options opt = {.listen = "127.0.0.1:0", .health_timeout_ms = 50};
    assert_int_equal(ps_http_start(&opt, m, &http, &err), PS_OK);
    uint16_t port = ps_http_port(http);
    assert_true(port > 0);

    ps_metrics_counter_add(m, PS_M_CONSUMED, 0, 7);
    assert_int_equal(request(port, "GET", "/metrics", body, sizeof(body)), 200);
    assert_non_null(strstr(body, "\npseudostream_events_consumed_total{topic=\"hl7v2.events\"} 7\n"));
    assert_non_null(strstr(body, "pseudostream_build_info{version="));

    /* Live right after start; not once the loop stops ticking; live again on a tick. */
    assert_int_equal(request(port, "GET", "/healthz", body, sizeof(body)), 200);
    assert_string_equal(body, "ok\n");
    struct timespec pause = {0, 120 * 1000 * 1000};
    nanosleep(&pause, NULL);
    assert_int_equal(request(port, "GET", "/healthz", body, sizeof(body)), 503);
    ps_metrics_health_tick(m);
    assert_int_equal(request(port, "GET", "/healthz", body, sizeof(body)), 200);

    /* Ready only with the keyring, the opt-out state and partitions. */
    assert_int_equal(request(port, "GET", "/readyz", body, sizeof(body)), 503);
    assert_string_equal(body, "not ready: keyring not loaded\n");
    ps_metrics_keyring_loaded_set(m, 1);
    ps_metrics_optout_loaded_set(m, 1);
    assert_int_equal(request(port, "GET", "/readyz", body, sizeof(body)), 503);
    assert_string_equal(body, "not ready: no partitions assigned\n");
    ps_metrics_gauge_set(m, PS_M_ASSIGNED_PARTITIONS, 0, 2);
    assert_int_equal(request(port, "GET", "/readyz", body, sizeof(body)), 200);
    assert_string_equal(body, "ready\n");
    ps_metrics_gauge_set(m, PS_M_ASSIGNED_PARTITIONS, 0, 0);
    assert_int_equal(request(port, "GET", "/readyz", body, sizeof(body)), 503);

    assert_int_equal(request(port, "HEAD", "/metrics", body, sizeof(body)), 200);
    assert_int_equal(request(port, "GET", "/", body, sizeof(body)), 404);
    assert_int_equal(request(port, "GET", "/metrics/x", body, sizeof(body)), 404);
    assert_int_equal(request(port, "POST", "/metrics", body, sizeof(body)), 405);
    assert_int_equal(request(port, "DELETE", "/readyz", body, sizeof(body)), 405);

    /* A second server cannot take the same port; the message names the address. */
    char listen[32];
    struct ps_http *second = NULL;
    snprintf(listen, sizeof(listen), "127.0.0.1:%u", port);
    struct ps_http_options same = {.listen = listen, .health_timeout_ms = 50};
    assert_int_equal(ps_http_start(&same, m, &second, &err), PS_ERR_IO);
    assert_null(second);
    assert_non_null(strstr(err.msg, listen));

    ps_http_stop(http);
    ps_http_stop(NULL);
    ps_metrics_destroy(m);
}

static void test_bad_listen(void **state)
{
    (void)state;
    struct ps_metrics *m = NULL;
    struct ps_http *http = NULL;
    struct ps_error err;
    ps_error_clear(&err);
    assert_int_equal(ps_metrics_new(NULL, &m, &err), PS_OK);
    static const char *const bad[] = {"", "host", "localhost:9464", "1.2.3:9464", "[::1]9464",
                                      "::1:9464", "0.0.0.0:65536", "0.0.0.0:09464",
                                      "0.0.0.0:94a4", "0.0.0.0:"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct ps_http_options opt = {.listen = bad[i], .health_timeout_ms = 1000};
        assert_int_equal(ps_http_start(&opt, m, &http, &err), PS_ERR_CONFIG);
        assert_null(http);
    }
    struct ps_http_options none = {0};
    assert_int_equal(ps_http_start(&none, m, &http, &err), PS_ERR_CONFIG);
    assert_int_equal(ps_http_start(NULL, m, &http, &err), PS_ERR_INVALID);
    ps_metrics_destroy(m);
}

static void test_parse_listen(void **state)
{
    (void)state;
    char host[64];
    uint16_t port = 1;
    assert_int_equal(ps_http_parse_listen("9464", host, sizeof(host), &port), 0);
    assert_string_equal(host, "");
    assert_int_equal(port, 9464);
    assert_int_equal(ps_http_parse_listen(":9465", host, sizeof(host), &port), 0);
    assert_string_equal(host, "");
    assert_int_equal(port, 9465);
    assert_int_equal(ps_http_parse_listen("0.0.0.0:0", host, sizeof(host), &port), 0);
    assert_string_equal(host, "0.0.0.0");
    assert_int_equal(port, 0);
    assert_int_equal(ps_http_parse_listen("[::]:65535", host, sizeof(host), &port), 0);
    assert_string_equal(host, "::");
    assert_int_equal(port, 65535);
    assert_int_equal(ps_http_parse_listen("[::]:", host, sizeof(host), &port), -1);
    assert_int_equal(ps_http_parse_listen("1.2.3.4:123456", host, sizeof(host), &port), -1);
    assert_int_equal(ps_http_parse_listen("127.0.0.1:80", host, 4, &port), -1);
    assert_int_equal(ps_http_parse_listen(NULL, host, sizeof(host), &port), -1);
}

static int setup(void **state)
{
    (void)state;
    ps_log_set_stream(NULL); /* the bind failure above is logged by libmicrohttpd */
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_endpoints),
        cmocka_unit_test(test_bad_listen),
        cmocka_unit_test(test_parse_listen),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
