/*
 * ps_metrics: the registry's exposition text, label escaping, the hot path's
 * bounds and the health state, and counting from several threads at once.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ps_metrics.h"

static const char *const topics[] = {"hl7v2.events", "fhir.events"};
static const char *const destinations[] = {"ward", "research"};

static struct ps_metrics *new_metrics(void)
{
    struct ps_metrics_labels labels = {topics, 2, destinations, 2};
    struct ps_metrics *m = NULL;
    struct ps_error err;
    ps_error_clear(&err);
    assert_int_equal(ps_metrics_new(&labels, &m, &err), PS_OK);
    return m;
}

/* Caller frees. */
static char *render(const struct ps_metrics *m)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    assert_non_null(out);
    assert_int_equal(ps_metrics_render(m, out, NULL), PS_OK);
    fclose(out);
    return text;
}

static void assert_line(const char *text, const char *line)
{
    char needle[512];
    snprintf(needle, sizeof(needle), "\n%s\n", line);
    if (!strstr(text, needle)) {
        print_error("missing line: %s\nin:\n%s\n", line, text);
        fail();
    }
}

static void test_exposition(void **state)
{
    (void)state;
    struct ps_metrics *m = new_metrics();
    ps_metrics_counter_add(m, PS_M_CONSUMED, 0, 10);
    ps_metrics_counter_add(m, PS_M_CONSUMED, 1, 3);
    ps_metrics_counter_add(m, PS_M_PRODUCED, 0, 9);
    ps_metrics_counter_add2(m, PS_M_WITHHELD, 1, PS_ERR_NO_KEY, 2);
    ps_metrics_counter_add2(m, PS_M_WITHHELD, 1, PS_ERR_NHS_INVALID, 1);
    ps_metrics_counter_add(m, PS_M_DEAD_LETTERED, PS_ERR_DECODE, 4);
    ps_metrics_counter_add(m, PS_M_TXN_COMMITTED, 0, 5);
    ps_metrics_counter_add(m, PS_M_TXN_ABORTED, 0, 1);
    ps_metrics_counter_add(m, PS_M_REBALANCES, 0, 2);
    ps_metrics_gauge_set(m, PS_M_CONSUMER_LAG, 0, 1234);
    ps_metrics_gauge_set(m, PS_M_ASSIGNED_PARTITIONS, 0, 6);
    ps_metrics_gauge_add(m, PS_M_ASSIGNED_PARTITIONS, 0, -2);
    ps_metrics_gauge_set(m, PS_M_KEYRING_KEY_ID, 0, 3);
    ps_metrics_gauge_set(m, PS_M_KEYRING_LOCKED, 0, 1);
    ps_metrics_observe(m, PS_M_BATCH_SECONDS, 0.2);
    ps_metrics_observe(m, PS_M_BATCH_SECONDS, 100);
    ps_metrics_observe(m, PS_M_EVENT_SECONDS, 0.00003);
    ps_metrics_observe(m, PS_M_EVENT_SECONDS, -1);
    ps_metrics_observe(m, PS_M_EVENT_SECONDS, NAN);

    char *text = render(m);
    assert_line(text, "# TYPE pseudostream_events_consumed_total counter");
    assert_line(text, "pseudostream_events_consumed_total{topic=\"hl7v2.events\"} 10");
    assert_line(text, "pseudostream_events_consumed_total{topic=\"fhir.events\"} 3");
    assert_line(text, "pseudostream_events_produced_total{destination=\"ward\"} 9");
    /* Series without a reason are shown at 0 from the start. */
    assert_line(text, "pseudostream_events_produced_total{destination=\"research\"} 0");
    assert_line(text, "pseudostream_events_withheld_total{destination=\"research\","
                      "reason=\"no_key\"} 2");
    assert_line(text, "pseudostream_events_withheld_total{destination=\"research\","
                      "reason=\"nhs_number_invalid\"} 1");
    assert_null(strstr(text, "destination=\"ward\",reason"));
    assert_line(text, "pseudostream_events_dead_lettered_total{reason=\"decode\"} 4");
    assert_line(text, "pseudostream_transactions_committed_total 5");
    assert_line(text, "pseudostream_transactions_aborted_total 1");
    assert_line(text, "pseudostream_rebalances_total 2");
    assert_line(text, "# TYPE pseudostream_consumer_lag gauge");
    assert_line(text, "pseudostream_consumer_lag{topic=\"hl7v2.events\"} 1234");
    assert_line(text, "pseudostream_consumer_lag{topic=\"fhir.events\"} 0");
    assert_line(text, "pseudostream_assigned_partitions 4");
    assert_line(text, "pseudostream_keyring_key_id 3");
    assert_line(text, "pseudostream_keyring_locked 1");
    assert_line(text, "# TYPE pseudostream_batch_seconds histogram");
    assert_line(text, "pseudostream_batch_seconds_bucket{le=\"0.1\"} 0");
    assert_line(text, "pseudostream_batch_seconds_bucket{le=\"0.25\"} 1");
    assert_line(text, "pseudostream_batch_seconds_bucket{le=\"60\"} 1");
    assert_line(text, "pseudostream_batch_seconds_bucket{le=\"+Inf\"} 2");
    assert_line(text, "pseudostream_batch_seconds_sum 100.200000000");
    assert_line(text, "pseudostream_batch_seconds_count 2");
    /* Negative and NaN durations count as 0, in the first bucket. */
    assert_line(text, "pseudostream_event_processing_seconds_bucket{le=\"1e-05\"} 2");
    assert_line(text, "pseudostream_event_processing_seconds_bucket{le=\"5e-05\"} 3");
    assert_line(text, "pseudostream_event_processing_seconds_count 3");
    assert_line(text, "pseudostream_build_info{version=\"" PS_VERSION "\"} 1");
    /* The opt-out age is not shown until a state is loaded. */
    assert_null(strstr(text, "\npseudostream_optout_state_age_seconds "));
    free(text);

    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ps_metrics_optout_as_of_set(m, (int64_t)ts.tv_sec * 1000 - 90000);
    text = render(m);
    const char *age = strstr(text, "\npseudostream_optout_state_age_seconds ");
    assert_non_null(age);
    double seconds = strtod(age + strlen("\npseudostream_optout_state_age_seconds "), NULL);
    assert_true(seconds >= 89.0 && seconds < 120.0);
    free(text);
    ps_metrics_destroy(m);
}

/* Out-of-range labels and the wrong call for a metric change nothing. */
static void test_bounds(void **state)
{
    (void)state;
    struct ps_metrics *m = new_metrics();
    char *before = render(m);
    ps_metrics_counter_add(m, PS_M_CONSUMED, 2, 1);
    ps_metrics_counter_add(m, PS_M_PRODUCED, 99, 1);
    ps_metrics_counter_add(m, PS_M_DEAD_LETTERED, PS_METRICS_MAX_REASONS, 1);
    ps_metrics_counter_add(m, PS_M_WITHHELD, 0, 1);
    ps_metrics_counter_add2(m, PS_M_WITHHELD, 2, 0, 1);
    ps_metrics_counter_add2(m, PS_M_WITHHELD, 0, PS_METRICS_MAX_REASONS, 1);
    ps_metrics_counter_add2(m, PS_M_CONSUMED, 0, 0, 1);
    ps_metrics_counter_add(m, PS_M_CONSUMER_LAG, 0, 1);
    ps_metrics_gauge_set(m, PS_M_CONSUMER_LAG, 2, 5);
    ps_metrics_gauge_set(m, PS_M_CONSUMED, 0, 5);
    ps_metrics_observe(m, PS_M_CONSUMED, 1.0);
    char *after = render(m);
    assert_string_equal(before, after);
    free(before);
    free(after);

    /* NULL registry: metrics off, every call is a no-op. */
    ps_metrics_counter_add(NULL, PS_M_CONSUMED, 0, 1);
    ps_metrics_counter_add2(NULL, PS_M_WITHHELD, 0, 0, 1);
    ps_metrics_gauge_set(NULL, PS_M_ASSIGNED_PARTITIONS, 0, 1);
    ps_metrics_gauge_add(NULL, PS_M_ASSIGNED_PARTITIONS, 0, 1);
    ps_metrics_observe(NULL, PS_M_BATCH_SECONDS, 1);
    ps_metrics_health_tick(NULL);
    ps_metrics_optout_as_of_set(NULL, 1);
    ps_metrics_keyring_loaded_set(NULL, 1);
    ps_metrics_optout_loaded_set(NULL, 1);
    assert_int_equal(ps_metrics_live(NULL, 1000), 0);
    assert_int_equal(ps_metrics_ready(NULL, NULL), 0);
    assert_int_equal(ps_metrics_render(NULL, stdout, NULL), PS_ERR_INVALID);
    ps_metrics_destroy(NULL);
    ps_metrics_destroy(m);
}

static void test_labels(void **state)
{
    (void)state;
    struct ps_error err;
    struct ps_metrics *m = NULL;
    static const char *const odd[] = {"a\"b\\c\nd"};
    static const char *const empty[] = {""};
    struct ps_metrics_labels labels = {odd, 1, NULL, 0};
    ps_error_clear(&err);
    assert_int_equal(ps_metrics_new(&labels, &m, &err), PS_OK);
    char *text = render(m);
    assert_line(text, "pseudostream_events_consumed_total{topic=\"a\\\"b\\\\c\\nd\"} 0");
    free(text);
    ps_metrics_destroy(m);
    m = NULL;

    labels.topics = empty;
    assert_int_equal(ps_metrics_new(&labels, &m, &err), PS_ERR_INVALID);
    assert_null(m);
    labels.topics = NULL;
    assert_int_equal(ps_metrics_new(&labels, &m, &err), PS_ERR_INVALID);
    labels.topic_count = PS_METRICS_MAX_LABELS + 1;
    labels.topics = odd;
    assert_int_equal(ps_metrics_new(&labels, &m, &err), PS_ERR_INVALID);
    assert_int_equal(ps_metrics_new(NULL, NULL, &err), PS_ERR_INVALID);

    /* No labels: the unlabelled series only. */
    assert_int_equal(ps_metrics_new(NULL, &m, &err), PS_OK);
    text = render(m);
    assert_null(strstr(text, "topic="));
    assert_line(text, "pseudostream_transactions_committed_total 0");
    free(text);
    ps_metrics_destroy(m);
}

static void test_health(void **state)
{
    (void)state;
    struct ps_metrics *m = new_metrics();
    const char *why = NULL;
    struct timespec pause = {0, 30 * 1000 * 1000};

    /* The registry's creation counts as the first tick. */
    assert_int_equal(ps_metrics_live(m, 10000), 1);
    nanosleep(&pause, NULL);
    assert_int_equal(ps_metrics_live(m, 10), 0);
    ps_metrics_health_tick(m);
    assert_int_equal(ps_metrics_live(m, 10), 1);

    assert_int_equal(ps_metrics_ready(m, &why), 0);
    assert_string_equal(why, "keyring not loaded");
    ps_metrics_keyring_loaded_set(m, 1);
    assert_int_equal(ps_metrics_ready(m, &why), 0);
    assert_string_equal(why, "opt-out state not loaded");
    ps_metrics_optout_loaded_set(m, 1);
    assert_int_equal(ps_metrics_ready(m, &why), 0);
    assert_string_equal(why, "no partitions assigned");
    ps_metrics_gauge_set(m, PS_M_ASSIGNED_PARTITIONS, 0, 3);
    assert_int_equal(ps_metrics_ready(m, &why), 1);
    assert_null(why);
    ps_metrics_gauge_set(m, PS_M_ASSIGNED_PARTITIONS, 0, 0);
    assert_int_equal(ps_metrics_ready(m, NULL), 0);
    ps_metrics_destroy(m);
}

#define THREADS 4
#define ADDS 100000

static void *count_many(void *arg)
{
    struct ps_metrics *m = arg;
    for (int i = 0; i < ADDS; i++) {
        ps_metrics_counter_add(m, PS_M_CONSUMED, 0, 1);
        ps_metrics_counter_add2(m, PS_M_WITHHELD, 1, PS_ERR_NO_KEY, 1);
        ps_metrics_observe(m, PS_M_EVENT_SECONDS, 0.001);
    }
    return NULL;
}

/* Counts from several threads while another renders: nothing is lost. */
static void test_threads(void **state)
{
    (void)state;
    struct ps_metrics *m = new_metrics();
    pthread_t threads[THREADS];
    for (int i = 0; i < THREADS; i++) {
        assert_int_equal(pthread_create(&threads[i], NULL, count_many, m), 0);
    }
    for (int i = 0; i < 5; i++) {
        free(render(m));
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(threads[i], NULL);
    }
    char *text = render(m);
    char line[256];
    snprintf(line, sizeof(line), "pseudostream_events_consumed_total{topic=\"hl7v2.events\"} %d",
             THREADS * ADDS);
    assert_line(text, line);
    snprintf(line, sizeof(line),
             "pseudostream_events_withheld_total{destination=\"research\",reason=\"no_key\"} %d",
             THREADS * ADDS);
    assert_line(text, line);
    snprintf(line, sizeof(line), "pseudostream_event_processing_seconds_count %d",
             THREADS * ADDS);
    assert_line(text, line);
    free(text);
    ps_metrics_destroy(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exposition),
        cmocka_unit_test(test_bounds),
        cmocka_unit_test(test_labels),
        cmocka_unit_test(test_health),
        cmocka_unit_test(test_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
