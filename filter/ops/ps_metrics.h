/*
 * ps_metrics: the service's Prometheus metrics and its health state.
 *
 * A fixed registry: every metric is known at compile time (enum ps_metric_id)
 * and every label value is known at start-up, so the hot path is one relaxed
 * atomic add on a pre-allocated slot: no allocation, no lock, no look-up by
 * name. Labels come only from a fixed, non-payload set:
 *
 *   topic        the configured input topics (registered at ps_metrics_new)
 *   destination  the policy's destinations (registered at ps_metrics_new)
 *   reason       a ps_err_t code, named by ps_err_name() ("no_key", "decode")
 *
 * The caller refers to a label value by its index in the arrays it registered
 * (topic i is conf->input_topics[i], destination d is the engine's destination
 * d) and to a reason by its ps_err_t code, as struct ps_pipeline_stats does.
 * An index out of range is a programming error: the update is dropped, never
 * written elsewhere.
 *
 * Exposition (ps_metrics_render) is the Prometheus text format 0.0.4:
 *
 *   pseudostream_events_consumed_total{topic}
 *   pseudostream_events_produced_total{destination}
 *   pseudostream_events_withheld_total{destination,reason}
 *   pseudostream_events_dead_lettered_total{reason}
 *   pseudostream_transactions_committed_total, _transactions_aborted_total
 *   pseudostream_rebalances_total
 *   pseudostream_batch_seconds, pseudostream_event_processing_seconds (histograms)
 *   pseudostream_consumer_lag{topic}, pseudostream_assigned_partitions
 *   pseudostream_optout_state_age_seconds (from the state's as-of time, at scrape)
 *   pseudostream_keyring_key_id, pseudostream_keyring_locked
 *   pseudostream_build_info{version}
 *
 * Series without a reason label are always shown (0 until counted), so rate()
 * works from the first scrape; series with a reason label appear once counted,
 * since most (destination, reason) pairs never happen.
 *
 * Health: /healthz asks whether the poll loop ticked recently
 * (ps_metrics_health_tick), /readyz whether partitions are assigned and the
 * keyring and opt-out state are loaded. Both are answered from here so that the
 * pipeline needs one handle.
 *
 * Threading: every function but ps_metrics_new and ps_metrics_destroy may be
 * called from any thread at any time (the HTTP server renders while the
 * pipeline counts).
 */
#ifndef PS_METRICS_H
#define PS_METRICS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "ps_error.h"

enum ps_metric_id {
    /* counters: ps_metrics_counter_add (label: see each) */
    PS_M_CONSUMED = 0,        /* label: topic index */
    PS_M_PRODUCED,            /* label: destination index */
    PS_M_WITHHELD,            /* ps_metrics_counter_add2: destination index, reason code */
    PS_M_DEAD_LETTERED,       /* label: reason code */
    PS_M_TXN_COMMITTED,       /* no label: pass 0 */
    PS_M_TXN_ABORTED,         /* no label */
    PS_M_REBALANCES,          /* no label */
    /* gauges: ps_metrics_gauge_set / _add */
    PS_M_CONSUMER_LAG,        /* label: topic index; sum over the topic's assigned partitions */
    PS_M_ASSIGNED_PARTITIONS, /* no label; readiness needs it above 0 */
    PS_M_KEYRING_KEY_ID,      /* no label: the id of the newest usable key (never material) */
    PS_M_KEYRING_LOCKED,      /* no label: 1 when the keyring is locked in memory */
    /* histograms: ps_metrics_observe */
    PS_M_BATCH_SECONDS,       /* one batch, consume to commit */
    PS_M_EVENT_SECONDS,       /* one event through the engine, all destinations */
    PS_M_COUNT
};

/* Reasons are ps_err_t codes below this bound. */
#define PS_METRICS_MAX_REASONS 64
/* Most topics and destinations one registry takes. */
#define PS_METRICS_MAX_LABELS 256

struct ps_metrics;

/* Names registered at start-up: copied, so the arrays need not outlive the call.
 * A name must be 1..249 bytes (a Kafka topic's limit); it is escaped on output. */
struct ps_metrics_labels {
    const char *const *topics;
    size_t topic_count;
    const char *const *destinations;
    size_t destination_count;
};

/* Creates a registry with every series at 0 and the health clock started now
 * (so /healthz gives the process until then plus the timeout to tick first).
 * labels may be NULL (no topic or destination series). PS_ERR_INVALID for too
 * many or bad names, PS_ERR_NOMEM. */
ps_err_t ps_metrics_new(const struct ps_metrics_labels *labels, struct ps_metrics **m_p,
                        struct ps_error *err);
/* NULL is a no-op. No other thread may use m any longer (stop the HTTP server first). */
void ps_metrics_destroy(struct ps_metrics *m);

/* Hot path. m may be NULL (metrics off): then these do nothing. */
void ps_metrics_counter_add(struct ps_metrics *m, enum ps_metric_id id, size_t label, uint64_t n);
void ps_metrics_counter_add2(struct ps_metrics *m, enum ps_metric_id id, size_t label,
                             size_t label2, uint64_t n);
void ps_metrics_gauge_set(struct ps_metrics *m, enum ps_metric_id id, size_t label, int64_t v);
void ps_metrics_gauge_add(struct ps_metrics *m, enum ps_metric_id id, size_t label, int64_t d);
/* Records one duration in seconds (negative or NaN count as 0). */
void ps_metrics_observe(struct ps_metrics *m, enum ps_metric_id id, double seconds);

/* The opt-out state's as-of time (Unix milliseconds); the age gauge is now minus
 * this, computed at each scrape so it keeps growing while no update comes.
 * Not shown until set. */
void ps_metrics_optout_as_of_set(struct ps_metrics *m, int64_t as_of_ms);

/* Health. tick: call once per turn of the poll loop, including idle turns. */
void ps_metrics_health_tick(struct ps_metrics *m);
/* Readiness inputs: 1 once loaded. A service whose policy uses no opt-out
 * state sets optout_loaded to 1 at start-up. */
void ps_metrics_keyring_loaded_set(struct ps_metrics *m, int loaded);
void ps_metrics_optout_loaded_set(struct ps_metrics *m, int loaded);

/* 1 when the last tick is at most timeout_ms old, else 0. */
int ps_metrics_live(const struct ps_metrics *m, uint32_t timeout_ms);
/* 1 when ready; else 0 and *why_p (may be NULL) names what is missing, as a
 * static string. */
int ps_metrics_ready(const struct ps_metrics *m, const char **why_p);

/* Writes the exposition text to out. PS_ERR_IO when out fails. */
ps_err_t ps_metrics_render(const struct ps_metrics *m, FILE *out, struct ps_error *err);

/* Monotonic milliseconds, the clock the health state uses. */
int64_t ps_metrics_now_ms(void);

#endif
