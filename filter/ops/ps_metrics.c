#include "ps_metrics.h"

#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define HIST_MAX_BOUNDS 16
#define LABEL_MAX_LEN 249

enum kind { K_COUNTER, K_GAUGE, K_HISTOGRAM };
enum label_kind { L_NONE, L_TOPIC, L_DESTINATION, L_REASON };

struct desc {
    const char *name;
    const char *help;
    enum kind kind;
    enum label_kind l1, l2;
};

/* Indexed by enum ps_metric_id; the order here is the order of the exposition. */
static const struct desc descs[PS_M_COUNT] = {
    [PS_M_CONSUMED] = {"pseudostream_events_consumed_total",
                       "Input events consumed, per input topic.", K_COUNTER, L_TOPIC, L_NONE},
    [PS_M_PRODUCED] = {"pseudostream_events_produced_total",
                       "Derived records produced, per destination.", K_COUNTER, L_DESTINATION,
                       L_NONE},
    [PS_M_WITHHELD] = {"pseudostream_events_withheld_total",
                       "Events withheld from a destination, per destination and reason.",
                       K_COUNTER, L_DESTINATION, L_REASON},
    [PS_M_DEAD_LETTERED] = {"pseudostream_events_dead_lettered_total",
                            "Input events sent to the dead-letter topic, per reason.", K_COUNTER,
                            L_REASON, L_NONE},
    [PS_M_TXN_COMMITTED] = {"pseudostream_transactions_committed_total",
                            "Kafka transactions (batches) committed.", K_COUNTER, L_NONE, L_NONE},
    [PS_M_TXN_ABORTED] = {"pseudostream_transactions_aborted_total",
                          "Kafka transactions (batches) aborted and replayed.", K_COUNTER, L_NONE,
                          L_NONE},
    [PS_M_REBALANCES] = {"pseudostream_rebalances_total",
                         "Consumer-group rebalances this member took part in.", K_COUNTER,
                         L_NONE, L_NONE},
    [PS_M_CONSUMER_LAG] = {"pseudostream_consumer_lag",
                           "Events not yet consumed (log-stable offset minus position), summed "
                           "over this member's partitions of the topic.",
                           K_GAUGE, L_TOPIC, L_NONE},
    [PS_M_ASSIGNED_PARTITIONS] = {"pseudostream_assigned_partitions",
                                  "Input partitions assigned to this member.", K_GAUGE, L_NONE,
                                  L_NONE},
    [PS_M_KEYRING_KEY_ID] = {"pseudostream_keyring_key_id",
                             "Id of the newest usable keyring key (never key material).",
                             K_GAUGE, L_NONE, L_NONE},
    [PS_M_KEYRING_LOCKED] = {"pseudostream_keyring_locked",
                             "1 when keyring secrets are locked in memory (cannot be swapped).",
                             K_GAUGE, L_NONE, L_NONE},
    [PS_M_BATCH_SECONDS] = {"pseudostream_batch_seconds",
                            "Time from a batch's first event to its commit.", K_HISTOGRAM,
                            L_NONE, L_NONE},
    [PS_M_EVENT_SECONDS] = {"pseudostream_event_processing_seconds",
                            "Time to decide and derive one event for every destination (one event in 16 is timed).",
                            K_HISTOGRAM, L_NONE, L_NONE},
};

/* Batches run from milliseconds (small, idle) to the transaction interval and
 * beyond; events from microseconds (decode and a few HMACs) to milliseconds. */
static const double batch_bounds[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                      1,     2.5,  5,     10,   30,  60};
static const double event_bounds[] = {0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005,
                                      0.001,   0.0025,   0.005,   0.01,   0.025,   0.1};

struct histogram {
    const double *bounds;
    size_t bound_count;
    _Atomic uint64_t buckets[HIST_MAX_BOUNDS + 1]; /* per bucket, not cumulative; last: +Inf */
    _Atomic uint64_t count;
    _Atomic uint64_t sum_ns;                       /* integer, so that one atomic add does */
};

struct ps_metrics {
    char **topics;
    size_t topic_count;
    char **destinations;
    size_t destination_count;

    _Atomic uint64_t *consumed;                    /* [topic_count] */
    _Atomic uint64_t *produced;                    /* [destination_count] */
    _Atomic uint64_t *withheld;                    /* [destination_count][MAX_REASONS] */
    _Atomic uint64_t dead_lettered[PS_METRICS_MAX_REASONS];
    _Atomic uint64_t txn_committed;
    _Atomic uint64_t txn_aborted;
    _Atomic uint64_t rebalances;

    _Atomic int64_t *lag;                          /* [topic_count] */
    _Atomic int64_t assigned;
    _Atomic int64_t key_id;
    _Atomic int64_t locked;

    struct histogram batch;
    struct histogram event;

    _Atomic int64_t optout_as_of_ms;               /* wall clock; 0: not set */
    _Atomic int64_t last_tick_ms;                  /* monotonic */
    _Atomic int keyring_loaded;
    _Atomic int optout_loaded;
};

int64_t ps_metrics_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void free_names(char **names, size_t count)
{
    for (size_t i = 0; names && i < count; i++) {
        free(names[i]);
    }
    free(names);
}

static ps_err_t copy_names(const char *what, const char *const *src, size_t count, char ***out_p,
                           struct ps_error *err)
{
    *out_p = NULL;
    if (count == 0) {
        return PS_OK;
    }
    if (!src || count > PS_METRICS_MAX_LABELS) {
        return ps_error_set(err, PS_ERR_INVALID, "metrics: at most %d %s names can be registered",
                            PS_METRICS_MAX_LABELS, what);
    }
    char **names = calloc(count, sizeof(*names));
    if (!names) {
        return ps_error_set(err, PS_ERR_NOMEM, "metrics: out of memory");
    }
    for (size_t i = 0; i < count; i++) {
        size_t len = src[i] ? strlen(src[i]) : 0;
        if (len == 0 || len > LABEL_MAX_LEN) {
            free_names(names, count);
            return ps_error_set(err, PS_ERR_INVALID,
                                "metrics: %s name %zu must be 1 to %d bytes long", what, i,
                                LABEL_MAX_LEN);
        }
        names[i] = strdup(src[i]);
        if (!names[i]) {
            free_names(names, count);
            return ps_error_set(err, PS_ERR_NOMEM, "metrics: out of memory");
        }
    }
    *out_p = names;
    return PS_OK;
}

static void histogram_init(struct histogram *h, const double *bounds, size_t count)
{
    h->bounds = bounds;
    h->bound_count = count;
}

ps_err_t ps_metrics_new(const struct ps_metrics_labels *labels, struct ps_metrics **m_p,
                        struct ps_error *err)
{
    ps_err_t rc = PS_OK;
    struct ps_metrics_labels none = {0};
    if (!m_p) {
        return ps_error_set(err, PS_ERR_INVALID, "ps_metrics_new: m_p is required");
    }
    if (!labels) {
        labels = &none;
    }
    struct ps_metrics *m = calloc(1, sizeof(*m));
    if (!m) {
        return ps_error_set(err, PS_ERR_NOMEM, "metrics: out of memory");
    }
    rc = copy_names("topic", labels->topics, labels->topic_count, &m->topics, err);
    if (rc != PS_OK) {
        goto cleanup;
    }
    m->topic_count = labels->topic_count;
    rc = copy_names("destination", labels->destinations, labels->destination_count,
                    &m->destinations, err);
    if (rc != PS_OK) {
        goto cleanup;
    }
    m->destination_count = labels->destination_count;

    /* calloc'd zero bytes are valid atomic zeros on every platform we build for. */
    m->consumed = calloc(m->topic_count + 1, sizeof(*m->consumed));
    m->lag = calloc(m->topic_count + 1, sizeof(*m->lag));
    m->produced = calloc(m->destination_count + 1, sizeof(*m->produced));
    m->withheld = calloc((m->destination_count + 1) * PS_METRICS_MAX_REASONS,
                         sizeof(*m->withheld));
    if (!m->consumed || !m->lag || !m->produced || !m->withheld) {
        rc = ps_error_set(err, PS_ERR_NOMEM, "metrics: out of memory");
        goto cleanup;
    }
    histogram_init(&m->batch, batch_bounds, sizeof(batch_bounds) / sizeof(batch_bounds[0]));
    histogram_init(&m->event, event_bounds, sizeof(event_bounds) / sizeof(event_bounds[0]));
    atomic_store(&m->last_tick_ms, ps_metrics_now_ms());
    *m_p = m;
    m = NULL;

cleanup:
    ps_metrics_destroy(m);
    return rc;
}

void ps_metrics_destroy(struct ps_metrics *m)
{
    if (!m) {
        return;
    }
    free_names(m->topics, m->topic_count);
    free_names(m->destinations, m->destination_count);
    free(m->consumed);
    free(m->produced);
    free(m->withheld);
    free(m->lag);
    free(m);
}

/* ------------------------------------------------------------- hot path */

static _Atomic uint64_t *counter_slot(struct ps_metrics *m, enum ps_metric_id id, size_t a,
                                      size_t b)
{
    switch (id) {
    case PS_M_CONSUMED: return a < m->topic_count ? &m->consumed[a] : NULL;
    case PS_M_PRODUCED: return a < m->destination_count ? &m->produced[a] : NULL;
    case PS_M_WITHHELD:
        return a < m->destination_count && b < PS_METRICS_MAX_REASONS
                   ? &m->withheld[a * PS_METRICS_MAX_REASONS + b]
                   : NULL;
    case PS_M_DEAD_LETTERED: return a < PS_METRICS_MAX_REASONS ? &m->dead_lettered[a] : NULL;
    case PS_M_TXN_COMMITTED: return &m->txn_committed;
    case PS_M_TXN_ABORTED: return &m->txn_aborted;
    case PS_M_REBALANCES: return &m->rebalances;
    default: return NULL;
    }
}

static _Atomic int64_t *gauge_slot(struct ps_metrics *m, enum ps_metric_id id, size_t a)
{
    switch (id) {
    case PS_M_CONSUMER_LAG: return a < m->topic_count ? &m->lag[a] : NULL;
    case PS_M_ASSIGNED_PARTITIONS: return &m->assigned;
    case PS_M_KEYRING_KEY_ID: return &m->key_id;
    case PS_M_KEYRING_LOCKED: return &m->locked;
    default: return NULL;
    }
}

void ps_metrics_counter_add(struct ps_metrics *m, enum ps_metric_id id, size_t label, uint64_t n)
{
    if (m && id != PS_M_WITHHELD) {
        _Atomic uint64_t *slot = counter_slot(m, id, label, 0);
        if (slot) {
            atomic_fetch_add_explicit(slot, n, memory_order_relaxed);
        }
    }
}

void ps_metrics_counter_add2(struct ps_metrics *m, enum ps_metric_id id, size_t label,
                             size_t label2, uint64_t n)
{
    if (m && id == PS_M_WITHHELD) {
        _Atomic uint64_t *slot = counter_slot(m, id, label, label2);
        if (slot) {
            atomic_fetch_add_explicit(slot, n, memory_order_relaxed);
        }
    }
}

void ps_metrics_gauge_set(struct ps_metrics *m, enum ps_metric_id id, size_t label, int64_t v)
{
    _Atomic int64_t *slot = m ? gauge_slot(m, id, label) : NULL;
    if (slot) {
        atomic_store_explicit(slot, v, memory_order_relaxed);
    }
}

void ps_metrics_gauge_add(struct ps_metrics *m, enum ps_metric_id id, size_t label, int64_t d)
{
    _Atomic int64_t *slot = m ? gauge_slot(m, id, label) : NULL;
    if (slot) {
        atomic_fetch_add_explicit(slot, d, memory_order_relaxed);
    }
}

void ps_metrics_observe(struct ps_metrics *m, enum ps_metric_id id, double seconds)
{
    struct histogram *h = NULL;
    if (!m) {
        return;
    }
    if (id == PS_M_BATCH_SECONDS) {
        h = &m->batch;
    } else if (id == PS_M_EVENT_SECONDS) {
        h = &m->event;
    } else {
        return;
    }
    if (!(seconds > 0)) { /* also catches NaN */
        seconds = 0;
    }
    size_t b = 0;
    while (b < h->bound_count && seconds > h->bounds[b]) {
        b++;
    }
    /* Saturate instead of wrapping: a duration of centuries is a clock bug. */
    double ns = seconds * 1e9;
    uint64_t ns_int = ns >= 1.8e19 ? UINT64_C(18000000000000000000) : (uint64_t)ns;
    atomic_fetch_add_explicit(&h->buckets[b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->sum_ns, ns_int, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
}

void ps_metrics_optout_as_of_set(struct ps_metrics *m, int64_t as_of_ms)
{
    if (m) {
        atomic_store_explicit(&m->optout_as_of_ms, as_of_ms, memory_order_relaxed);
    }
}

void ps_metrics_health_tick(struct ps_metrics *m)
{
    if (m) {
        atomic_store_explicit(&m->last_tick_ms, ps_metrics_now_ms(), memory_order_relaxed);
    }
}

void ps_metrics_keyring_loaded_set(struct ps_metrics *m, int loaded)
{
    if (m) {
        atomic_store(&m->keyring_loaded, loaded ? 1 : 0);
    }
}

void ps_metrics_optout_loaded_set(struct ps_metrics *m, int loaded)
{
    if (m) {
        atomic_store(&m->optout_loaded, loaded ? 1 : 0);
    }
}

int ps_metrics_live(const struct ps_metrics *m, uint32_t timeout_ms)
{
    if (!m) {
        return 0;
    }
    int64_t last = atomic_load_explicit(&((struct ps_metrics *)m)->last_tick_ms,
                                        memory_order_relaxed);
    return ps_metrics_now_ms() - last <= (int64_t)timeout_ms;
}

int ps_metrics_ready(const struct ps_metrics *m, const char **why_p)
{
    struct ps_metrics *mm = (struct ps_metrics *)m;
    const char *why = NULL;
    if (!m) {
        why = "no metrics registry";
    } else if (!atomic_load(&mm->keyring_loaded)) {
        why = "keyring not loaded";
    } else if (!atomic_load(&mm->optout_loaded)) {
        why = "opt-out state not loaded";
    } else if (atomic_load(&mm->assigned) <= 0) {
        why = "no partitions assigned";
    }
    if (why_p) {
        *why_p = why;
    }
    return why == NULL;
}

/* ------------------------------------------------------------ exposition */

/* Label values are topic and destination names from the configuration and
 * policy (and our own reason names), never payload; escaped all the same. */
static void put_label_value(FILE *out, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\') {
            fputs("\\\\", out);
        } else if (*s == '"') {
            fputs("\\\"", out);
        } else if (*s == '\n') {
            fputs("\\n", out);
        } else {
            fputc(*s, out);
        }
    }
}

static void put_header(FILE *out, const struct desc *d)
{
    static const char *const kind_names[] = {"counter", "gauge", "histogram"};
    fprintf(out, "# HELP %s %s\n# TYPE %s %s\n", d->name, d->help, d->name,
            kind_names[d->kind]);
}

static void put_u64(FILE *out, const char *name, const char *label, const char *value,
                    uint64_t v)
{
    fputs(name, out);
    if (label) {
        fprintf(out, "{%s=\"", label);
        put_label_value(out, value);
        fputs("\"}", out);
    }
    fprintf(out, " %llu\n", (unsigned long long)v);
}

static void put_i64(FILE *out, const char *name, const char *label, const char *value,
                    int64_t v)
{
    fputs(name, out);
    if (label) {
        fprintf(out, "{%s=\"", label);
        put_label_value(out, value);
        fputs("\"}", out);
    }
    fprintf(out, " %lld\n", (long long)v);
}

static void render_histogram(FILE *out, const struct desc *d, const struct histogram *hc)
{
    struct histogram *h = (struct histogram *)hc;
    uint64_t cumulative = 0;
    /* Buckets, count and sum are read one after another while observations go
     * on; Prometheus tolerates the small skew, and count is read last so that
     * it is never below the +Inf bucket by more than the observations since. */
    for (size_t b = 0; b <= h->bound_count; b++) {
        cumulative += atomic_load_explicit(&h->buckets[b], memory_order_relaxed);
        if (b < h->bound_count) {
            fprintf(out, "%s_bucket{le=\"%g\"} %llu\n", d->name, h->bounds[b],
                    (unsigned long long)cumulative);
        } else {
            fprintf(out, "%s_bucket{le=\"+Inf\"} %llu\n", d->name,
                    (unsigned long long)cumulative);
        }
    }
    uint64_t sum_ns = atomic_load_explicit(&h->sum_ns, memory_order_relaxed);
    uint64_t count = atomic_load_explicit(&h->count, memory_order_relaxed);
    if (count < cumulative) {
        count = cumulative;
    }
    fprintf(out, "%s_sum %.9f\n%s_count %llu\n", d->name, (double)sum_ns / 1e9, d->name,
            (unsigned long long)count);
}

static void render_reason_counter(FILE *out, const char *name, const char *dest,
                                  _Atomic uint64_t *slots)
{
    for (size_t r = 0; r < PS_METRICS_MAX_REASONS; r++) {
        uint64_t v = atomic_load_explicit(&slots[r], memory_order_relaxed);
        if (v == 0) {
            continue;
        }
        fputs(name, out);
        fputc('{', out);
        if (dest) {
            fputs("destination=\"", out);
            put_label_value(out, dest);
            fputs("\",", out);
        }
        fprintf(out, "reason=\"%s\"} %llu\n", ps_err_name((ps_err_t)r), (unsigned long long)v);
    }
}

ps_err_t ps_metrics_render(const struct ps_metrics *mc, FILE *out, struct ps_error *err)
{
    struct ps_metrics *m = (struct ps_metrics *)mc; /* atomics are read, never written */
    if (!m || !out) {
        return ps_error_set(err, PS_ERR_INVALID, "ps_metrics_render: m and out are required");
    }
    for (int id = 0; id < PS_M_COUNT; id++) {
        const struct desc *d = &descs[id];
        put_header(out, d);
        switch ((enum ps_metric_id)id) {
        case PS_M_CONSUMED:
            for (size_t t = 0; t < m->topic_count; t++) {
                put_u64(out, d->name, "topic", m->topics[t], atomic_load(&m->consumed[t]));
            }
            break;
        case PS_M_PRODUCED:
            for (size_t i = 0; i < m->destination_count; i++) {
                put_u64(out, d->name, "destination", m->destinations[i],
                        atomic_load(&m->produced[i]));
            }
            break;
        case PS_M_WITHHELD:
            for (size_t i = 0; i < m->destination_count; i++) {
                render_reason_counter(out, d->name, m->destinations[i],
                                      &m->withheld[i * PS_METRICS_MAX_REASONS]);
            }
            break;
        case PS_M_DEAD_LETTERED:
            render_reason_counter(out, d->name, NULL, m->dead_lettered);
            break;
        case PS_M_TXN_COMMITTED:
        case PS_M_TXN_ABORTED:
        case PS_M_REBALANCES:
            put_u64(out, d->name, NULL, NULL, atomic_load(counter_slot(m, id, 0, 0)));
            break;
        case PS_M_CONSUMER_LAG:
            for (size_t t = 0; t < m->topic_count; t++) {
                put_i64(out, d->name, "topic", m->topics[t], atomic_load(&m->lag[t]));
            }
            break;
        case PS_M_ASSIGNED_PARTITIONS:
        case PS_M_KEYRING_KEY_ID:
        case PS_M_KEYRING_LOCKED:
            put_i64(out, d->name, NULL, NULL, atomic_load(gauge_slot(m, id, 0)));
            break;
        case PS_M_BATCH_SECONDS:
            render_histogram(out, d, &m->batch);
            break;
        case PS_M_EVENT_SECONDS:
            render_histogram(out, d, &m->event);
            break;
        case PS_M_COUNT:
            break;
        }
    }
    int64_t as_of = atomic_load(&m->optout_as_of_ms);
    fputs("# HELP pseudostream_optout_state_age_seconds Age of the national data opt-out state "
          "(now minus its as-of time).\n"
          "# TYPE pseudostream_optout_state_age_seconds gauge\n",
          out);
    if (as_of > 0) {
        int64_t age_ms = wall_ms() - as_of;
        fprintf(out, "pseudostream_optout_state_age_seconds %.3f\n",
                age_ms > 0 ? (double)age_ms / 1000.0 : 0.0);
    }
    fputs("# HELP pseudostream_build_info The running build; always 1.\n"
          "# TYPE pseudostream_build_info gauge\n"
          "pseudostream_build_info{version=\"" PS_VERSION "\"} 1\n",
          out);
    if (ferror(out)) {
        return ps_error_set(err, PS_ERR_IO, "metrics: could not write the exposition");
    }
    return PS_OK;
}
