#include "ps_optout.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ps_keyed_hash.h"
#include "ps_nhs.h"

/*
 * The set is an open-addressing table of keyed digests with linear probing.
 * The digests are uniformly distributed under a key nobody else has, so
 * their first eight bytes are a good enough hash and an attacker who chooses
 * the numbers on the topic cannot aim them at one bucket.
 *
 * Removal uses backward-shift deletion instead of tombstones: a live feed
 * adds and removes for the life of the process, and tombstones would pile up
 * until a rehash; shifting keeps every probe sequence as short as if the
 * removed entry had never been there.
 *
 * Nothing here is secret once hashed (the digests are useless without the
 * key, which stays in the crypto layer), so the table is plain heap memory.
 * What is sensitive is the clear number on its way in: the normalised digits
 * and the file reader's buffers are wiped as soon as they have been hashed.
 */

#define DIGEST PS_KEYED_HASH_BYTES

/* Smallest table; a power of two so that the index is a mask. */
#define OPTOUT_MIN_CAP 1024u
/* Grow beyond 7/10 full: linear probing degrades quickly past that. */
#define OPTOUT_LOAD_NUM 7u
#define OPTOUT_LOAD_DEN 10u
/* The most numbers held: more than England's registered population, so a
 * genuine extract fits while a runaway file or topic cannot exhaust memory. */
#define OPTOUT_MAX_COUNT 80000000u
/* A line longer than this cannot be one NHS number with its separators,
 * comma and CR; the rest of it is skipped and the line counted invalid
 * (unless it is a comment). */
#define OPTOUT_LINE_MAX 64u
#define OPTOUT_READ_CHUNK 65536u

struct ps_optout {
    enum ps_optout_form form;
    struct ps_keyed_hash *kh;
    uint8_t (*digests)[DIGEST]; /* cap entries */
    uint8_t *used;              /* cap flags: 1 when the slot holds a digest */
    size_t cap;                 /* power of two, or 0 before the first add */
    size_t count;
    int64_t as_of_ms;
};

/* Digests staged while a file is read, so that a failed load changes nothing. */
struct optout_stage {
    uint8_t (*digests)[DIGEST];
    size_t count;
    size_t cap;
};

static size_t optout_home(const uint8_t digest[DIGEST], size_t cap)
{
    uint64_t h;
    memcpy(&h, digest, sizeof(h));
    return (size_t)h & (cap - 1);
}

/* Slot of digest, or cap when absent. */
static size_t optout_find(const struct ps_optout *optout, const uint8_t digest[DIGEST])
{
    if (optout->cap == 0) {
        return 0;
    }
    size_t mask = optout->cap - 1;
    for (size_t i = optout_home(digest, optout->cap);; i = (i + 1) & mask) {
        if (!optout->used[i]) {
            return optout->cap;
        }
        if (memcmp(optout->digests[i], digest, DIGEST) == 0) {
            return i;
        }
    }
}

/* Inserts into a table known to have room. Returns 1 when added, 0 when the
 * digest was already there. */
static int optout_place(uint8_t (*digests)[DIGEST], uint8_t *used, size_t cap,
                        const uint8_t digest[DIGEST])
{
    size_t mask = cap - 1;
    for (size_t i = optout_home(digest, cap);; i = (i + 1) & mask) {
        if (!used[i]) {
            memcpy(digests[i], digest, DIGEST);
            used[i] = 1;
            return 1;
        }
        if (memcmp(digests[i], digest, DIGEST) == 0) {
            return 0;
        }
    }
}

/* Makes room for want entries in all, rehashing into a larger table. */
static ps_err_t optout_reserve(struct ps_optout *optout, size_t want, struct ps_error *err)
{
    if (want > OPTOUT_MAX_COUNT) {
        return ps_error_set(err, PS_ERR_LIMIT, "opt-out: more than %u numbers",
                            OPTOUT_MAX_COUNT);
    }
    size_t cap = optout->cap ? optout->cap : OPTOUT_MIN_CAP;
    while (want * OPTOUT_LOAD_DEN > cap * OPTOUT_LOAD_NUM) {
        cap *= 2;
    }
    if (cap == optout->cap) {
        return PS_OK;
    }
    uint8_t (*digests)[DIGEST] = calloc(cap, DIGEST);
    uint8_t *used = calloc(cap, 1);
    if (!digests || !used) {
        free(digests);
        free(used);
        return ps_error_set(err, PS_ERR_NOMEM, "opt-out: out of memory for %zu numbers", want);
    }
    for (size_t i = 0; i < optout->cap; i++) {
        if (optout->used[i]) {
            optout_place(digests, used, cap, optout->digests[i]);
        }
    }
    if (optout->digests) {
        ps_keyed_hash_wipe(optout->digests, optout->cap * DIGEST);
    }
    free(optout->digests);
    free(optout->used);
    optout->digests = digests;
    optout->used = used;
    optout->cap = cap;
    return PS_OK;
}

static ps_err_t optout_insert(struct ps_optout *optout, const uint8_t digest[DIGEST],
                              struct ps_error *err)
{
    if (optout_find(optout, digest) < optout->cap) {
        return PS_OK;
    }
    ps_err_t rc = optout_reserve(optout, optout->count + 1, err);
    if (rc != PS_OK) {
        return rc;
    }
    optout->count += (size_t)optout_place(optout->digests, optout->used, optout->cap, digest);
    return PS_OK;
}

static void optout_delete(struct ps_optout *optout, size_t hole)
{
    size_t mask = optout->cap - 1;
    /* Walk the run after the hole: an entry moves back into the hole when it
     * is at least as far from its home as from the hole, i.e. when the hole
     * lies on its probe path, so every lookup still finds it before an empty
     * slot. The run ends at the first empty slot. */
    for (size_t j = (hole + 1) & mask; optout->used[j]; j = (j + 1) & mask) {
        size_t from_home = (j - optout_home(optout->digests[j], optout->cap)) & mask;
        size_t from_hole = (j - hole) & mask;
        if (from_home >= from_hole) {
            memcpy(optout->digests[hole], optout->digests[j], DIGEST);
            hole = j;
        }
    }
    memset(optout->digests[hole], 0, DIGEST);
    optout->used[hole] = 0;
    optout->count--;
}

/* Normalises and hashes one number; the clear digits never outlive the call. */
static ps_err_t optout_digest(const struct ps_optout *optout, const char *nhs, size_t len,
                              uint8_t digest[DIGEST], struct ps_error *err)
{
    char digits[PS_NHS_DIGITS + 1];
    if (!nhs) {
        return ps_error_set(err, PS_ERR_NHS_INVALID, "opt-out: NHS number missing");
    }
    ps_err_t rc = ps_nhs_normalise(nhs, len, digits, err);
    if (rc == PS_OK) {
        ps_keyed_hash_compute(optout->kh, digits, PS_NHS_DIGITS, digest);
    }
    ps_keyed_hash_wipe(digits, sizeof(digits));
    return rc;
}

ps_err_t ps_optout_new(enum ps_optout_form form, struct ps_optout **optout_p,
                       struct ps_error *err)
{
    ps_err_t rc = PS_OK;
    struct ps_optout *optout = NULL;

    if (!optout_p || (form != PS_OPTOUT_CLEARED && form != PS_OPTOUT_OPTED_OUT)) {
        return ps_error_set(err, PS_ERR_INVALID, "opt-out: bad arguments");
    }
    optout = calloc(1, sizeof(*optout));
    if (!optout) {
        return ps_error_set(err, PS_ERR_NOMEM, "opt-out: out of memory");
    }
    optout->form = form;
    rc = ps_keyed_hash_new(&optout->kh, err);
    if (rc != PS_OK) {
        ps_error_prefix(err, "opt-out");
        goto cleanup;
    }
    *optout_p = optout;
    optout = NULL;

cleanup:
    ps_optout_destroy(optout);
    return rc;
}

void ps_optout_destroy(struct ps_optout *optout)
{
    if (!optout) {
        return;
    }
    /* The digests are useless once the key is gone, but wiping them costs
     * little and leaves nothing to match against a later key leak. */
    if (optout->digests) {
        ps_keyed_hash_wipe(optout->digests, optout->cap * DIGEST);
    }
    free(optout->digests);
    free(optout->used);
    ps_keyed_hash_destroy(optout->kh);
    free(optout);
}

enum ps_optout_form ps_optout_form(const struct ps_optout *optout)
{
    return optout ? optout->form : PS_OPTOUT_CLEARED;
}

ps_err_t ps_optout_add(struct ps_optout *optout, const char *nhs, size_t len,
                       struct ps_error *err)
{
    uint8_t digest[DIGEST];
    if (!optout) {
        return ps_error_set(err, PS_ERR_INVALID, "opt-out: missing state");
    }
    ps_err_t rc = optout_digest(optout, nhs, len, digest, err);
    if (rc != PS_OK) {
        return rc;
    }
    return optout_insert(optout, digest, err);
}

ps_err_t ps_optout_remove(struct ps_optout *optout, const char *nhs, size_t len,
                          struct ps_error *err)
{
    uint8_t digest[DIGEST];
    if (!optout) {
        return ps_error_set(err, PS_ERR_INVALID, "opt-out: missing state");
    }
    ps_err_t rc = optout_digest(optout, nhs, len, digest, err);
    if (rc != PS_OK) {
        return rc;
    }
    size_t slot = optout_find(optout, digest);
    if (slot < optout->cap) {
        optout_delete(optout, slot);
    }
    return PS_OK;
}

int ps_optout_cleared(const struct ps_optout *optout, const char *nhs, size_t len)
{
    uint8_t digest[DIGEST];
    if (!optout || optout_digest(optout, nhs, len, digest, NULL) != PS_OK) {
        return 0;
    }
    int listed = optout_find(optout, digest) < optout->cap;
    return optout->form == PS_OPTOUT_CLEARED ? listed : !listed;
}

size_t ps_optout_count(const struct ps_optout *optout)
{
    return optout ? optout->count : 0;
}

int64_t ps_optout_as_of(const struct ps_optout *optout)
{
    return optout ? optout->as_of_ms : 0;
}

void ps_optout_set_as_of(struct ps_optout *optout, int64_t as_of_ms)
{
    if (optout && as_of_ms > optout->as_of_ms) {
        optout->as_of_ms = as_of_ms;
    }
}

int ps_optout_fresh(const struct ps_optout *optout, int64_t now_ms, int64_t max_age_ms)
{
    if (!optout || optout->as_of_ms <= 0 || max_age_ms < 0) {
        return 0;
    }
    return now_ms - optout->as_of_ms <= max_age_ms;
}

const void *ps_optout_table(const struct ps_optout *optout, size_t *size_p)
{
    if (size_p) {
        *size_p = optout ? optout->cap * DIGEST : 0;
    }
    return optout ? (const void *)optout->digests : NULL;
}

/* ------------------------------------------------------------ file loading */

static ps_err_t stage_push(struct optout_stage *stage, const uint8_t digest[DIGEST],
                           struct ps_error *err)
{
    if (stage->count >= OPTOUT_MAX_COUNT) {
        return ps_error_set(err, PS_ERR_LIMIT, "more than %u numbers", OPTOUT_MAX_COUNT);
    }
    if (stage->count == stage->cap) {
        size_t cap = stage->cap ? stage->cap * 2 : 4096;
        if (cap > OPTOUT_MAX_COUNT) {
            cap = OPTOUT_MAX_COUNT;
        }
        void *grown = realloc(stage->digests, cap * DIGEST);
        if (!grown) {
            return ps_error_set(err, PS_ERR_NOMEM, "out of memory after %zu numbers",
                                stage->count);
        }
        stage->digests = grown;
        stage->cap = cap;
    }
    memcpy(stage->digests[stage->count++], digest, DIGEST);
    return PS_OK;
}

static int is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r';
}

/* 1 when the first non-blank byte is '#': comments may be of any length. */
static int is_comment(const char *line, size_t len)
{
    size_t i = 0;
    while (i < len && is_blank(line[i])) {
        i++;
    }
    return i < len && line[i] == '#';
}

/* One line without its '\n'. Returns 1 and fills digest for a valid number,
 * 0 for a blank or comment line, -1 for an invalid line. */
static int optout_line(const struct ps_optout *optout, const char *line, size_t len,
                       uint8_t digest[DIGEST])
{
    size_t start = 0;
    while (start < len && is_blank(line[start])) {
        start++;
    }
    while (len > start && is_blank(line[len - 1])) {
        len--;
    }
    /* The MESH .dat form ends each number with a comma. */
    if (len > start && line[len - 1] == ',') {
        len--;
        while (len > start && is_blank(line[len - 1])) {
            len--;
        }
    }
    if (len == start || is_comment(line, len)) {
        return 0;
    }
    return optout_digest(optout, line + start, len - start, digest, NULL) == PS_OK ? 1 : -1;
}

ps_err_t ps_optout_load_file(struct ps_optout *optout, const char *path, size_t *invalid_p,
                             struct ps_error *err)
{
    ps_err_t rc = PS_OK;
    int fd = -1;
    char *chunk = NULL;
    char line[OPTOUT_LINE_MAX];
    size_t line_len = 0;
    int overlong = 0;
    int first = 1;
    size_t invalid = 0;
    struct optout_stage stage = {0};
    uint8_t digest[DIGEST];

    if (!optout || !path) {
        return ps_error_set(err, PS_ERR_INVALID, "opt-out: missing argument");
    }
    /* read(2) into buffers of our own rather than stdio, whose hidden buffer
     * would keep clear numbers after the file is closed. */
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        rc = ps_error_set(err, PS_ERR_IO, "opt-out file '%s': %s", path, strerror(errno));
        goto cleanup;
    }
    chunk = malloc(OPTOUT_READ_CHUNK);
    if (!chunk) {
        rc = ps_error_set(err, PS_ERR_NOMEM, "opt-out file '%s': out of memory", path);
        goto cleanup;
    }
    for (;;) {
        ssize_t got = read(fd, chunk, OPTOUT_READ_CHUNK);
        if (got < 0) {
            if (errno == EINTR) {
                continue;
            }
            rc = ps_error_set(err, PS_ERR_IO, "opt-out file '%s': %s", path, strerror(errno));
            goto cleanup;
        }
        /* got == 0 is the end: a last line without '\n' is finished below. */
        for (ssize_t i = 0; i <= got; i++) {
            int at_end = i == got;
            if (at_end && got > 0) {
                break;
            }
            char c = at_end ? '\n' : chunk[i];
            if (c != '\n') {
                if (line_len < sizeof(line)) {
                    line[line_len++] = c;
                } else {
                    overlong = 1;
                }
                continue;
            }
            const char *text = line;
            size_t text_len = line_len;
            /* A UTF-8 byte order mark, as Windows tools write, is not part of
             * the first number. */
            if (first && text_len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0) {
                text += 3;
                text_len -= 3;
            }
            first = 0;
            /* An overlong line is kept only as far as its first bytes, which
             * still tell a comment from a number that cannot be one. */
            int kind = overlong ? (is_comment(text, text_len) ? 0 : -1)
                                : optout_line(optout, text, text_len, digest);
            if (kind < 0) {
                invalid++;
            } else if (kind > 0) {
                rc = stage_push(&stage, digest, err);
                if (rc != PS_OK) {
                    ps_error_prefix(err, "opt-out file '%s'", path);
                    goto cleanup;
                }
            }
            line_len = 0;
            overlong = 0;
        }
        if (got == 0) {
            break;
        }
    }
    /* All or nothing: a half-read list of opted-out numbers would let the
     * other half through. */
    rc = optout_reserve(optout, optout->count + stage.count, err);
    if (rc != PS_OK) {
        ps_error_prefix(err, "opt-out file '%s'", path);
        goto cleanup;
    }
    for (size_t i = 0; i < stage.count; i++) {
        optout->count +=
            (size_t)optout_place(optout->digests, optout->used, optout->cap, stage.digests[i]);
    }
    if (invalid_p) {
        *invalid_p = invalid;
    }

cleanup:
    if (fd >= 0) {
        close(fd);
    }
    if (chunk) {
        ps_keyed_hash_wipe(chunk, OPTOUT_READ_CHUNK);
        free(chunk);
    }
    ps_keyed_hash_wipe(line, sizeof(line));
    free(stage.digests);
    return rc;
}
