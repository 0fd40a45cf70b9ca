#include "ps_engine.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ps_audit.h"
#include "ps_buf.h"
#include "ps_escrow.h"
#include "ps_fingerprint.h"
#include "ps_frame.h"
#include "ps_nhs.h"
#include "ps_policy.h"
#include "ps_pseudonym.h"
#include "ps_transform.h"

struct ps_engine {
    const struct ps_policy_doc *doc;
    const struct ps_registry *reg;
    char policy_hash[80];
    size_t dst_count;
    size_t schema_count;
    struct ps_plan **plans;                  /* [schema * dst_count + d] */
    struct ps_pseudonymiser **pseudonymisers; /* [d], NULL without a domain */
    struct ps_pseudonymiser *audit;           /* the audit domain */
    struct ps_escrow_authorities **escrow;    /* [d], NULL without escrow */
    struct engine_audit_plan *audit_plans;    /* [schema * dst_count + d] */
};

/* A plan as the audit topic names it: its id, and its AuditPlan record
 * (single-object framed), made once for every audit record that names it. */
struct engine_audit_plan {
    char id[PS_AUDIT_PLAN_ID_MAX];
    struct ps_buf record;
};

#define ENGINE_ESCROW_MAX 32 /* escrow records one event can produce */
#define ENGINE_CODES_MEMO 16 /* code-set answers one event remembers */

/* One code-set predicate's answer for the current event: destinations often
 * list the same code sets (loaded from the same files) over the same fields. */
struct codes_memo {
    const char *file;
    const int *nodes;
    size_t node_count;
    int matched;
};

struct ps_engine_worker {
    const struct ps_engine *engine;
    struct ps_decoder *dec;
    struct ps_buf *bufs;                     /* one output buffer per destination */
    struct ps_engine_output *outputs;
    char (*keys)[PS_TOKEN_MAX];
    const struct ps_schema *last_schema;
    const struct ps_optout *optout;
    int optout_fresh;
    int optout_cleared;                      /* this event's opt-out answer: -1 not asked yet */
    struct codes_memo codes[ENGINE_CODES_MEMO];
    size_t codes_count;                      /* answers remembered for this event */
    struct ps_engine_event event;
    char event_id[256];
    char event_type[64];
    char subject[PS_TOKEN_MAX];
    struct ps_escrow_cache *escrow_cache;
    struct ps_engine_escrow escrow[ENGINE_ESCROW_MAX];
    struct ps_buf escrow_bufs[ENGINE_ESCROW_MAX];
    char escrow_keys[ENGINE_ESCROW_MAX][PS_TOKEN_MAX + 128];
    size_t escrow_count;
};

/* What the map callback needs to transform one event for one destination. */
struct map_ctx {
    struct ps_engine_worker *worker;
    const struct ps_escrow_authorities *escrow; /* NULL without escrow */
    const struct ps_plan *plan;
    const struct ps_pseudonymiser *pseudonymiser;
    const struct ps_scalar *subject;  /* the subject's NHS number, or NULL */
    int64_t event_ms;
    int has_time;
    uint32_t key_id;
    int shift_ready;
    int64_t shift_days;
    const char *subject_token; /* the subject's pseudonym in this domain, once computed */
    uint32_t subject_key_id;
    char text[64]; /* a token (PS_TOKEN_MAX) or a transform's text */
};

static size_t schema_index(const struct ps_engine *engine, const struct ps_schema *schema)
{
    for (size_t s = 0; s < engine->schema_count; s++) {
        if (ps_registry_at(engine->reg, s) == schema) {
            return s;
        }
    }
    return (size_t)-1;
}

/* Keeps the first finding of ps_policy_check_paths: start-up stops on it. */
static void keep_first(void *opaque, const struct ps_error *finding)
{
    struct ps_error *err = opaque;
    if (err->code == PS_OK) {
        *err = *finding;
    }
}

/* The filter holds only the authorities' public keys. */
static ps_err_t load_escrow(struct ps_engine *engine, size_t d, struct ps_error *err)
{
    const struct ps_policy_destination *dst = &engine->doc->destinations[d];
    struct ps_escrow_authorities *auth = calloc(1, sizeof(*auth));
    if (!auth) {
        return ps_error_set(err, PS_ERR_NOMEM, "out of memory");
    }
    engine->escrow[d] = auth;
    ps_err_t rc = ps_escrow_public_load(dst->escrow_public_key, auth->pk[0], err);
    auth->count = 1;
    if (rc == PS_OK && dst->escrow_second_public_key) {
        rc = ps_escrow_public_load(dst->escrow_second_public_key, auth->pk[1], err);
        auth->count = 2;
    }
    if (rc != PS_OK) {
        ps_error_prefix(err, "destination '%s': escrow", dst->name);
    }
    return rc;
}

/* A plan's field lists are the same for every event it is applied to: the
 * audit topic carries them once, in an AuditPlan record the audit records
 * name by id. */
static ps_err_t encode_audit_plan(const struct ps_engine *engine, const struct ps_plan *plan,
                                  const struct ps_schema *schema, uint64_t plan_fingerprint,
                                  struct engine_audit_plan *ap, struct ps_error *err)
{
    const struct ps_plan_fields *f = &plan->fields;
    ps_err_t rc = ps_audit_plan_id(engine->policy_hash, plan->dst->name,
                                   ps_schema_fingerprint(schema), ap->id, err);
    struct ps_audit_plan rec = {
        .plan_id = ap->id, .policy_hash = engine->policy_hash, .destination = plan->dst->name,
        .topic = plan->dst->topic, .input_schema = ps_schema_name(schema),
        .input_fingerprint = ps_schema_fingerprint(schema),
        .kept = f->kept, .kept_count = f->kept_count,
        .pseudonymised = f->pseudonymised, .pseudonymised_count = f->pseudonymised_count,
        .generalised = (const char *const *)f->generalised,
        .generalised_count = f->generalised_count,
        .dropped = f->dropped, .dropped_count = f->dropped_count};
    if (rc == PS_OK) {
        rc = ps_frame_write_single_object(plan_fingerprint, &ap->record);
    }
    if (rc == PS_OK) {
        rc = ps_audit_plan_encode(&rec, &ap->record, err);
    }
    return rc;
}

static ps_err_t compile_all(struct ps_engine *engine, const struct ps_keyring *kr,
                            struct ps_error *err)
{
    const struct ps_policy_doc *doc = engine->doc;
    ps_err_t arc = ps_pseudonymiser_new(kr, PS_AUDIT_DOMAIN, &engine->audit, err);
    if (arc != PS_OK) {
        return ps_error_prefix(err, "audit domain");
    }
    uint64_t plan_fingerprint = 0;
    arc = ps_fingerprint_schema(ps_audit_plan_schema_json, &plan_fingerprint, err);
    if (arc != PS_OK) {
        return ps_error_prefix(err, "audit plan schema");
    }
    for (size_t d = 0; d < engine->dst_count; d++) {
        const struct ps_policy_destination *dst = &doc->destinations[d];
        if (dst->escrow_public_key) {
            ps_err_t rc = load_escrow(engine, d, err);
            if (rc != PS_OK) {
                return rc;
            }
        }
        if (dst->pseudonym_domain) {
            ps_err_t rc = ps_pseudonymiser_new(kr, dst->pseudonym_domain,
                                               &engine->pseudonymisers[d], err);
            if (rc != PS_OK) {
                return ps_error_prefix(err, "destination '%s'", dst->name);
            }
        }
        for (size_t s = 0; s < engine->schema_count; s++) {
            size_t i = s * engine->dst_count + d;
            ps_err_t rc = ps_plan_compile(doc, dst, ps_registry_at(engine->reg, s),
                                          &engine->plans[i], err);
            if (rc == PS_OK) {
                rc = encode_audit_plan(engine, engine->plans[i], ps_registry_at(engine->reg, s),
                                       plan_fingerprint, &engine->audit_plans[i], err);
            }
            if (rc != PS_OK) {
                return rc;
            }
        }
    }
    struct ps_error first = {0};
    if (ps_policy_check_paths(engine->doc, engine->reg, keep_first, &first) > 0) {
        if (err) {
            *err = first;
        }
        return PS_ERR_CONFIG;
    }
    return PS_OK;
}

ps_err_t ps_engine_new(const struct ps_policy_doc *doc, const char *policy_hash,
                       const struct ps_registry *reg, const struct ps_keyring *kr,
                       struct ps_engine **engine_p, struct ps_error *err)
{
    ps_err_t rc = ps_policy_check(doc, err);
    if (rc != PS_OK) {
        return rc;
    }
    struct ps_engine *engine = calloc(1, sizeof(*engine));
    if (!engine) {
        return ps_error_set(err, PS_ERR_NOMEM, "out of memory");
    }
    engine->doc = doc;
    engine->reg = reg;
    snprintf(engine->policy_hash, sizeof(engine->policy_hash), "%s", policy_hash);
    engine->dst_count = doc->destination_count;
    engine->schema_count = ps_registry_count(reg);
    engine->plans = calloc(engine->dst_count * engine->schema_count + 1, sizeof(*engine->plans));
    engine->pseudonymisers = calloc(engine->dst_count, sizeof(*engine->pseudonymisers));
    engine->escrow = calloc(engine->dst_count, sizeof(*engine->escrow));
    engine->audit_plans = calloc(engine->dst_count * engine->schema_count + 1,
                                 sizeof(*engine->audit_plans));
    if (!engine->plans || !engine->pseudonymisers || !engine->escrow || !engine->audit_plans) {
        rc = ps_error_set(err, PS_ERR_NOMEM, "out of memory");
    } else {
        for (size_t i = 0; i < engine->dst_count * engine->schema_count; i++) {
            ps_buf_init(&engine->audit_plans[i].record, 0);
        }
        rc = compile_all(engine, kr, err);
    }
    if (rc != PS_OK) {
        ps_engine_destroy(engine);
        return rc;
    }
    *engine_p = engine;
    return PS_OK;
}

void ps_engine_destroy(struct ps_engine *engine)
{
    if (!engine) {
        return;
    }
    for (size_t i = 0; engine->plans && i < engine->dst_count * engine->schema_count; i++) {
        ps_plan_destroy(engine->plans[i]);
    }
    for (size_t i = 0; engine->audit_plans && i < engine->dst_count * engine->schema_count;
         i++) {
        ps_buf_free(&engine->audit_plans[i].record);
    }
    free(engine->audit_plans);
    for (size_t d = 0; engine->pseudonymisers && d < engine->dst_count; d++) {
        ps_pseudonymiser_destroy(engine->pseudonymisers[d]);
    }
    ps_pseudonymiser_destroy(engine->audit);
    for (size_t d = 0; engine->escrow && d < engine->dst_count; d++) {
        free(engine->escrow[d]);
    }
    free(engine->escrow);
    free(engine->plans);
    free(engine->pseudonymisers);
    free(engine);
}

size_t ps_engine_destination_count(const struct ps_engine *engine)
{
    return engine->dst_count;
}

const struct ps_policy_destination *ps_engine_destination(const struct ps_engine *engine,
                                                          size_t i)
{
    return i < engine->dst_count ? &engine->doc->destinations[i] : NULL;
}

const char *ps_engine_policy_hash(const struct ps_engine *engine)
{
    return engine->policy_hash;
}

const struct ps_plan *ps_engine_plan(const struct ps_engine *engine, const struct ps_schema *schema,
                                     size_t d)
{
    size_t s = schema_index(engine, schema);
    if (s == (size_t)-1 || d >= engine->dst_count) {
        return NULL;
    }
    return engine->plans[s * engine->dst_count + d];
}

ps_err_t ps_engine_worker_new(const struct ps_engine *engine, const struct ps_codec_limits *limits,
                              struct ps_engine_worker **worker_p, struct ps_error *err)
{
    struct ps_engine_worker *w = calloc(1, sizeof(*w));
    size_t n = engine->dst_count;
    if (!w || !(w->bufs = calloc(n, sizeof(*w->bufs))) ||
        !(w->outputs = calloc(n, sizeof(*w->outputs))) ||
        !(w->keys = calloc(n, sizeof(*w->keys)))) {
        ps_engine_worker_destroy(w);
        return ps_error_set(err, PS_ERR_NOMEM, "out of memory");
    }
    w->engine = engine;
    size_t max = limits && limits->max_message_bytes ? limits->max_message_bytes * 4 : 0;
    for (size_t d = 0; d < n; d++) {
        ps_buf_init(&w->bufs[d], max);
    }
    for (size_t e = 0; e < ENGINE_ESCROW_MAX; e++) {
        ps_buf_init(&w->escrow_bufs[e], 0);
    }
    ps_err_t rc = ps_decoder_new(limits, &w->dec, err);
    for (size_t d = 0; rc == PS_OK && d < n && !w->escrow_cache; d++) {
        if (engine->escrow[d]) {
            rc = ps_escrow_cache_new(PS_ESCROW_CACHE_DEFAULT, &w->escrow_cache, err);
        }
    }
    if (rc != PS_OK) {
        ps_engine_worker_destroy(w);
        return rc;
    }
    *worker_p = w;
    return PS_OK;
}

void ps_engine_worker_destroy(struct ps_engine_worker *worker)
{
    if (!worker) {
        return;
    }
    for (size_t d = 0; worker->bufs && d < worker->engine->dst_count; d++) {
        ps_buf_free(&worker->bufs[d]);
    }
    ps_decoder_destroy(worker->dec);
    for (size_t e = 0; e < ENGINE_ESCROW_MAX; e++) {
        ps_buf_free(&worker->escrow_bufs[e]);
    }
    ps_escrow_cache_destroy(worker->escrow_cache);
    free(worker->bufs);
    free(worker->outputs);
    free(worker->keys);
    free(worker);
}

const struct ps_schema *ps_engine_worker_schema(const struct ps_engine_worker *worker)
{
    return worker->last_schema;
}

const struct ps_engine_event *ps_engine_worker_event(const struct ps_engine_worker *worker)
{
    return worker->last_schema ? &worker->event : NULL;
}

void ps_engine_worker_set_optout(struct ps_engine_worker *worker, const struct ps_optout *optout,
                                 int fresh)
{
    worker->optout = optout;
    worker->optout_fresh = fresh;
}

const struct ps_engine_escrow *ps_engine_worker_escrow(const struct ps_engine_worker *worker,
                                                       size_t *count_p)
{
    *count_p = worker->escrow_count;
    return worker->escrow;
}

void ps_engine_worker_withhold(struct ps_engine_worker *worker, size_t d, ps_err_t reason,
                               const char *detail)
{
    struct ps_engine_output *out = &worker->outputs[d];
    out->decision = PS_WITHHELD;
    out->reason = reason;
    out->key = NULL;
    out->key_len = 0;
    out->value = NULL;
    out->len = 0;
    snprintf(out->detail, sizeof(out->detail), "%s", detail);
}

void ps_engine_worker_escrow_reset(struct ps_engine_worker *worker)
{
    if (worker->escrow_cache) {
        ps_escrow_cache_clear(worker->escrow_cache);
    }
}

/* Seals the identifier behind a new token, once per (domain, token) this
 * worker has seen: a sealed box costs as much as some two hundred tokens. */
static ps_err_t escrow_token(struct map_ctx *ctx, const char *domain, const char *kind,
                             const char *token, const struct ps_scalar *in, struct ps_error *err)
{
    struct ps_engine_worker *w = ctx->worker;
    if (ps_escrow_cache_contains(w->escrow_cache, domain, token)) {
        return PS_OK;
    }
    if (w->escrow_count == ENGINE_ESCROW_MAX) {
        return ps_error_set(err, PS_ERR_LIMIT, "more than %d identifiers to escrow in one event",
                            ENGINE_ESCROW_MAX);
    }
    size_t e = w->escrow_count;
    /* An NHS number is sealed as its ten digits, the form it was tokenised in. */
    char digits[PS_NHS_DIGITS + 1];
    const char *value = in->s;
    size_t len = in->len;
    if (strcmp(kind, "nhs_number") == 0 && ps_nhs_normalise(in->s, in->len, digits, err) == PS_OK) {
        value = digits;
        len = PS_NHS_DIGITS;
    }
    ps_err_t rc = ps_escrow_seal(ctx->escrow, value, len, &w->escrow_bufs[e], err);
    memset(digits, 0, sizeof(digits));
    if (rc != PS_OK) {
        return rc;
    }
    int n = snprintf(w->escrow_keys[e], sizeof(w->escrow_keys[e]), "%s/%s", domain, token);
    w->escrow[e] = (struct ps_engine_escrow){.key = w->escrow_keys[e], .key_len = (size_t)n,
                                             .value = w->escrow_bufs[e].data,
                                             .len = w->escrow_bufs[e].len};
    w->escrow_count++;
    return PS_OK;
}

int ps_engine_needs_optout(const struct ps_engine *engine)
{
    for (size_t d = 0; d < engine->dst_count; d++) {
        if (ps_plan_applies_optout(&engine->doc->destinations[d])) {
            return 1;
        }
    }
    return 0;
}

static ps_err_t map_generalise(struct map_ctx *ctx, const struct ps_plan_node *pn,
                               const struct ps_schema_node *node, const struct ps_scalar *in,
                               struct ps_scalar *out, struct ps_error *err)
{
    ps_err_t rc;
    switch (pn->to) {
    case PS_GRAN_YEAR:
        out->kind = PS_SCALAR_INT;
        return ps_transform_year(in, node->logical, &out->i, err);
    case PS_GRAN_YEAR_MONTH:
        rc = ps_transform_year_month(in, node->logical, ctx->text, err);
        break;
    case PS_GRAN_AGE_BAND:
        if (!ctx->has_time) {
            return ps_error_set(err, PS_ERR_NO_EVENT_TIME, "event has no time to age against");
        }
        rc = ps_transform_age_band(in, node->logical, ctx->event_ms, ctx->text, err);
        break;
    case PS_GRAN_POSTCODE_DISTRICT:
    case PS_GRAN_POSTCODE_SECTOR:
        if (in->kind != PS_SCALAR_STRING) {
            return ps_error_set(err, PS_ERR_TRANSFORM, "value is not text");
        }
        rc = ps_transform_postcode(in->s, in->len, pn->to == PS_GRAN_POSTCODE_SECTOR, ctx->text,
                                   err);
        break;
    default:
        return ps_error_set(err, PS_ERR_TRANSFORM, "no generalisation given");
    }
    out->kind = PS_SCALAR_STRING;
    out->s = ctx->text;
    out->len = strlen(ctx->text);
    return rc;
}

/* The patient's shift, the same for every event of theirs in this domain
 * (under one key), from a pseudonym of kind "date_shift" that is never
 * disclosed, so a recipient cannot undo the shift. */
static ps_err_t shift_days(struct map_ctx *ctx, const struct ps_plan_node *pn,
                           struct ps_error *err)
{
    if (ctx->shift_ready) {
        return PS_OK;
    }
    if (!ctx->subject || ctx->subject->kind != PS_SCALAR_STRING) {
        return ps_error_set(err, PS_ERR_NHS_INVALID, "date shift needs the subject's NHS number");
    }
    if (!ctx->has_time) {
        return ps_error_set(err, PS_ERR_NO_EVENT_TIME, "event has no time to choose a key");
    }
    char token[PS_TOKEN_MAX];
    uint32_t key_id;
    ps_err_t rc = ps_pseudonymise(ctx->pseudonymiser, ctx->event_ms, "date_shift",
                                  ctx->subject->s, ctx->subject->len, token, &key_id, err);
    if (rc == PS_OK) {
        ctx->shift_days = ps_transform_shift_days(token, pn->rule ? pn->rule->window_days
                                                                  : PS_DATE_SHIFT_DEFAULT_DAYS);
        ctx->shift_ready = 1;
    }
    memset(token, 0, sizeof(token));
    return rc;
}

static ps_err_t map_leaf(void *opaque, int index, const struct ps_scalar *in,
                         struct ps_scalar *out, struct ps_error *err)
{
    struct map_ctx *ctx = opaque;
    const struct ps_plan_node *pn = &ctx->plan->nodes[index];
    const struct ps_schema_node *node = ps_schema_node(ctx->plan->schema, index);
    ps_err_t rc = PS_OK;
    memset(out, 0, sizeof(*out));
    if (in->kind == PS_SCALAR_NULL) {
        return PS_OK; /* an absent value stays absent */
    }
    switch (pn->action) {
    case PS_ACTION_PSEUDONYMISE:
        if (in->kind != PS_SCALAR_STRING) {
            rc = ps_error_set(err, PS_ERR_TRANSFORM, "value is not text");
        } else if (!ctx->has_time) {
            rc = ps_error_set(err, PS_ERR_NO_EVENT_TIME, "event has no time to choose a key");
        } else if (ctx->subject_token && strcmp(pn->kind, "nhs_number") == 0 &&
                   in->len == ctx->subject->len && memcmp(in->s, ctx->subject->s, in->len) == 0) {
            /* The subject's own NHS number: the same token as the record key,
             * already computed in this domain for this event's key. */
            memcpy(ctx->text, ctx->subject_token, strlen(ctx->subject_token) + 1);
            ctx->key_id = ctx->subject_key_id;
            if (ctx->escrow) {
                rc = escrow_token(ctx, ps_pseudonymiser_domain(ctx->pseudonymiser), pn->kind,
                                  ctx->text, in, err);
            }
            out->kind = PS_SCALAR_STRING;
            out->s = ctx->text;
            out->len = strlen(ctx->text);
        } else {
            rc = ps_pseudonymise(ctx->pseudonymiser, ctx->event_ms, pn->kind, in->s, in->len,
                                 ctx->text, &ctx->key_id, err);
            if (rc == PS_OK && ctx->escrow) {
                rc = escrow_token(ctx, ps_pseudonymiser_domain(ctx->pseudonymiser), pn->kind,
                                  ctx->text, in, err);
            }
            out->kind = PS_SCALAR_STRING;
            out->s = ctx->text;
            out->len = strlen(ctx->text);
        }
        break;
    case PS_ACTION_GENERALISE:
        rc = map_generalise(ctx, pn, node, in, out, err);
        break;
    case PS_ACTION_REDACT:
        out->kind = PS_SCALAR_STRING;
        out->s = PS_TRANSFORM_REDACTED;
        out->len = strlen(PS_TRANSFORM_REDACTED);
        break;
    case PS_ACTION_DATE_SHIFT:
        rc = shift_days(ctx, pn, err);
        if (rc == PS_OK) {
            rc = ps_transform_date_shift(in, node->logical, ctx->shift_days, out, ctx->text, err);
        }
        break;
    default:
        rc = ps_error_set(err, PS_ERR_TRANSFORM, "no transform for this field");
    }
    if (rc != PS_OK) {
        ps_error_prefix(err, "field '%s'", node->path);
    }
    return rc;
}

static void withhold(struct ps_engine_output *out, const struct ps_error *why)
{
    out->decision = PS_WITHHELD;
    out->reason = why->code;
    snprintf(out->detail, sizeof(out->detail), "%s", why->msg);
}

/* The subject's pseudonym keys every secondary-use record: per-patient order
 * survives partitioning, and nothing of the input key leaves. */
static ps_err_t subject_key(struct map_ctx *ctx, char *key, struct ps_error *err)
{
    if (!ctx->subject || ctx->subject->kind != PS_SCALAR_STRING) {
        return ps_error_set(err, PS_ERR_NHS_INVALID, "event has no NHS number for its subject");
    }
    if (!ctx->has_time) {
        return ps_error_set(err, PS_ERR_NO_EVENT_TIME, "event has no time to choose a key");
    }
    ps_err_t rc = ps_pseudonymise(ctx->pseudonymiser, ctx->event_ms, "nhs_number",
                                  ctx->subject->s, ctx->subject->len, key, &ctx->key_id, err);
    if (rc != PS_OK) {
        ps_error_prefix(err, "subject");
    } else {
        ctx->subject_token = key;
        ctx->subject_key_id = ctx->key_id;
    }
    return rc;
}

struct code_match {
    const struct ps_codeset *set;
    int present;
    int matched;
};

static int visit_match(void *opaque, const struct ps_scalar *v)
{
    struct code_match *m = opaque;
    if (v->kind == PS_SCALAR_NULL) {
        return 0;
    }
    m->present = 1;
    if (m->set && v->kind == PS_SCALAR_STRING && ps_codeset_match(m->set, v->s, v->len)) {
        m->matched = 1;
    }
    return m->matched;
}

/* "ADT^A08" lists the event whether MSH-9 carries the message structure too
 * ("ADT^A08^ADT_A01") or not: matching whole components, never a prefix of one. */
static int event_type_listed(const struct ps_policy_predicate *pred, const struct ps_scalar *t)
{
    for (size_t i = 0; t->kind == PS_SCALAR_STRING && i < pred->value_count; i++) {
        size_t n = strlen(pred->values[i]);
        if (n <= t->len && memcmp(pred->values[i], t->s, n) == 0 &&
            (n == t->len || t->s[n] == '^')) {
            return 1;
        }
    }
    return 0;
}

static int predicate_matches(const struct ps_event *ev, const struct ps_plan_predicate *pp)
{
    const struct ps_policy_predicate *pred = pp->pred;
    struct code_match m = {.set = pred->codeset};
    struct ps_scalar t = {0};
    switch (pred->kind) {
    case PS_PRED_EVENT_TYPE_IN:
    case PS_PRED_EVENT_TYPE_NOT_IN:
        if (pp->node_count > 0) {
            ps_event_get(ev, pp->nodes[0], &t);
        }
        return event_type_listed(pred, &t) == (pred->kind == PS_PRED_EVENT_TYPE_IN);
    case PS_PRED_CODES_IN:
    case PS_PRED_FIELD_PRESENT:
    case PS_PRED_FIELD_ABSENT:
        for (size_t i = 0; i < pp->node_count && !m.matched; i++) {
            ps_event_visit(ev, pp->nodes[i], visit_match, &m);
        }
        if (pred->kind == PS_PRED_CODES_IN) {
            return m.matched;
        }
        return m.present == (pred->kind == PS_PRED_FIELD_PRESENT);
    }
    return 0;
}

/* predicate_matches, remembering code-set answers for the rest of the event.
 * Two predicates give the same answer when their code sets come from the
 * same file (loaded once, at start-up) and they read the same fields. */
static int predicate_matches_memo(struct ps_engine_worker *w, const struct ps_event *ev,
                                  const struct ps_plan_predicate *pp)
{
    const struct ps_policy_predicate *pred = pp->pred;
    if (pred->kind != PS_PRED_CODES_IN || !pred->codeset || !pred->codeset->file) {
        return predicate_matches(ev, pp);
    }
    for (size_t i = 0; i < w->codes_count; i++) {
        const struct codes_memo *m = &w->codes[i];
        if (m->node_count == pp->node_count &&
            (m->file == pred->codeset->file || strcmp(m->file, pred->codeset->file) == 0) &&
            (pp->node_count == 0 ||
             memcmp(m->nodes, pp->nodes, pp->node_count * sizeof(*pp->nodes)) == 0)) {
            return m->matched;
        }
    }
    int matched = predicate_matches(ev, pp);
    if (w->codes_count < ENGINE_CODES_MEMO) {
        w->codes[w->codes_count++] = (struct codes_memo){.file = pred->codeset->file,
                                                         .nodes = pp->nodes,
                                                         .node_count = pp->node_count,
                                                         .matched = matched};
    }
    return matched;
}

/* Opt-out and withhold_when: may this destination receive the event at all? */
static ps_err_t gate(struct ps_engine_worker *w, const struct ps_event *ev,
                     const struct ps_plan *plan, const struct map_ctx *ctx, struct ps_error *err)
{
    if (ps_plan_applies_optout(plan->dst)) {
        if (!w->optout || !w->optout_fresh) {
            return ps_error_set(err, PS_ERR_OPT_OUT_STALE,
                                "the national data opt-out state is not loaded or too old");
        }
        /* Every destination asks the same question of the same state: once
         * per event is enough. */
        if (w->optout_cleared < 0) {
            w->optout_cleared = ps_optout_cleared(w->optout, ctx->subject->s, ctx->subject->len);
        }
        if (!w->optout_cleared) {
            return ps_error_set(err, PS_ERR_OPT_OUT,
                                "the patient is not cleared under the national data opt-out");
        }
    }
    for (size_t p = 0; p < plan->dst->predicate_count; p++) {
        const struct ps_policy_predicate *pred = plan->predicates[p].pred;
        if (predicate_matches_memo(w, ev, &plan->predicates[p])) {
            return ps_error_set(err, PS_ERR_PREDICATE, "withhold_when[%zu] (%s%s%s) at line %d",
                                p, ps_predicate_kind_name(pred->kind), pred->codeset ? ": " : "",
                                pred->codeset ? pred->codeset->name : "", pred->line);
        }
    }
    return PS_OK;
}

static void process_destination(struct ps_engine_worker *w, const struct ps_event *ev,
                                const struct ps_plan *plan, const struct engine_audit_plan *ap,
                                size_t d, const struct ps_scalar *subject, int64_t event_ms,
                                int has_time)
{
    struct ps_engine_output *out = &w->outputs[d];
    struct ps_buf *buf = &w->bufs[d];
    struct map_ctx ctx = {.worker = w, .escrow = w->engine->escrow[d], .plan = plan,
                          .pseudonymiser = w->engine->pseudonymisers[d], .subject = subject,
                          .event_ms = event_ms, .has_time = has_time};
    size_t escrow_before = w->escrow_count;
    struct ps_error why;
    ps_error_clear(&why); /* not = {0}: that would zero 512 bytes per destination */
    out->decision = PS_DISCLOSED;
    out->reason = PS_OK;
    out->detail[0] = '\0';
    out->value = NULL;
    out->len = 0;
    out->key = NULL;
    out->key_len = 0;
    out->key_id = 0;
    out->plan = plan;
    out->audit_plan_id = ap->id;
    out->audit_plan = ap->record.data;
    out->audit_plan_len = ap->record.len;
    ps_buf_reset(buf);
    int keyed = !ps_plan_is_direct_care(plan->dst) &&
                plan->dst->legal_basis.common_law != PS_COMMON_LAW_ANONYMISED;
    if (keyed && subject_key(&ctx, w->keys[d], &why) != PS_OK) {
        withhold(out, &why);
        return;
    }
    if (gate(w, ev, plan, &ctx, &why) != PS_OK) {
        withhold(out, &why);
        return;
    }
    const struct ps_schema *derived = ps_projection_schema(plan->projection);
    if (ps_frame_write_single_object(ps_schema_fingerprint(derived), buf) != PS_OK ||
        ps_projection_apply(plan->projection, ev, map_leaf, &ctx, buf, &why) != PS_OK) {
        if (why.code == PS_OK) {
            ps_error_set(&why, PS_ERR_TRANSFORM, "output could not be written");
        }
        w->escrow_count = escrow_before; /* nothing of a withheld record is escrowed */
        withhold(out, &why);
        return;
    }
    /* Only now, with the record written, is its escrow certain to go out too. */
    for (size_t e = escrow_before; e < w->escrow_count; e++) {
        const char *slash = strrchr(w->escrow_keys[e], '/');
        char domain[PS_TOKEN_MAX + 128];
        snprintf(domain, sizeof(domain), "%.*s", (int)(slash - w->escrow_keys[e]),
                 w->escrow_keys[e]);
        ps_escrow_cache_add(w->escrow_cache, domain, slash + 1);
    }
    out->decision = PS_DISCLOSED;
    out->value = buf->data;
    out->len = buf->len;
    if (keyed) {
        out->key = w->keys[d];
        out->key_len = strlen(w->keys[d]);
    }
    out->key_id = ctx.key_id;
}

static void event_time(const struct ps_event *ev, const struct ps_plan *plan, int64_t *ms_p,
                       int *has_p)
{
    struct ps_scalar t;
    *has_p = 0;
    if (plan->time_node >= 0 && ps_event_get(ev, plan->time_node, &t) == PS_OK &&
        t.kind != PS_SCALAR_NULL) {
        const struct ps_schema_node *node = ps_schema_node(plan->schema, plan->time_node);
        *has_p = ps_transform_instant(&t, node->logical, ms_p, NULL) == PS_OK;
    }
}

static void copy_text(const struct ps_event *ev, int node, char *buf, size_t size)
{
    struct ps_scalar v = {0};
    buf[0] = '\0';
    if (node >= 0 && ps_event_get(ev, node, &v) == PS_OK && v.kind == PS_SCALAR_STRING) {
        /* As "%.*s" would: cut to the buffer and at an embedded NUL. */
        size_t n = v.len < size - 1 ? v.len : size - 1;
        const char *nul = memchr(v.s, '\0', n);
        n = nul ? (size_t)(nul - v.s) : n;
        memcpy(buf, v.s, n);
        buf[n] = '\0';
    }
}

/* What the audit record says of the event: ids, time, and the subject only as
 * a pseudonym in the audit domain. */
static void describe_event(struct ps_engine_worker *w, const struct ps_event *ev,
                           const struct ps_plan *plan, const struct ps_scalar *subject,
                           int64_t ms, int has_time)
{
    struct ps_engine_event *e = &w->event;
    uint32_t key_id;
    e->schema = plan->schema;
    copy_text(ev, plan->id_node, w->event_id, sizeof(w->event_id));
    copy_text(ev, plan->type_node, w->event_type, sizeof(w->event_type));
    e->event_id = w->event_id;
    e->event_type = w->event_type;
    e->event_time_ms = has_time ? ms : -1;
    e->subject = NULL;
    e->key_id = -1;
    if (has_time && subject->kind == PS_SCALAR_STRING &&
        ps_pseudonymise(w->engine->audit, ms, "nhs_number", subject->s, subject->len, w->subject,
                        &key_id, NULL) == PS_OK) {
        e->subject = w->subject;
        e->key_id = key_id;
    }
}

ps_err_t ps_engine_process(struct ps_engine_worker *w, const void *data, size_t len,
                           const struct ps_engine_output **outputs_p, struct ps_error *err)
{
    const struct ps_engine *engine = w->engine;
    struct ps_frame frame;
    const struct ps_schema *schema;
    struct ps_event *ev;
    ps_err_t rc = ps_frame_parse(data, len, &frame, err);
    if (rc == PS_OK) {
        rc = ps_registry_resolve(engine->reg, &frame, &schema, err);
    }
    if (rc == PS_OK) {
        rc = ps_decoder_decode(w->dec, schema, frame.payload, frame.payload_len, &ev, err);
    }
    if (rc != PS_OK) {
        return rc;
    }
    size_t s = schema_index(engine, schema);
    if (s == (size_t)-1) {
        return ps_error_set(err, PS_ERR_SCHEMA_UNKNOWN, "schema has no compiled plan");
    }
    int64_t ms = 0;
    int has_time = 0;
    const struct ps_plan *first = engine->plans[s * engine->dst_count];
    struct ps_scalar subject = {0};
    if (first->subject_node >= 0) {
        ps_event_get(ev, first->subject_node, &subject);
    }
    event_time(ev, first, &ms, &has_time);
    describe_event(w, ev, first, &subject, ms, has_time);
    w->escrow_count = 0;
    w->optout_cleared = -1;
    w->codes_count = 0;
    for (size_t d = 0; d < engine->dst_count; d++) {
        size_t i = s * engine->dst_count + d;
        process_destination(w, ev, engine->plans[i], &engine->audit_plans[i], d, &subject, ms,
                            has_time);
    }
    w->last_schema = schema;
    *outputs_p = w->outputs;
    return PS_OK;
}
