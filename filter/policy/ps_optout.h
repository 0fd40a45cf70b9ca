/*
 * ps_optout: the national data opt-out state, held as keyed hashes.
 *
 * NHS England's service answers in one of two forms: the list of NHS numbers
 * cleared for use (the reply to a MESH check: only numbers WITHOUT an opt-out)
 * or a list of opted-out numbers. Either way the state never holds a clear NHS
 * number: each normalised number is hashed with BLAKE2b keyed by a secret made
 * for this process at start-up (in guarded memory), so the set cannot be read
 * back or compared across processes.
 *
 * "Cleared" means: the number is valid and, in the cleared form, listed; in
 * the opted-out form, not listed. A missing or invalid number is never cleared.
 *
 * The state has a date (as_of_ms): the extract's date for a file, and for live
 * updates from a compacted topic, the newest record's timestamp. A state older
 * than the configured maximum age must be treated as unusable (fail closed).
 *
 * Not thread-safe for writes: the pipeline applies updates between batches.
 */
#ifndef PS_OPTOUT_H
#define PS_OPTOUT_H

#include <stddef.h>
#include <stdint.h>

#include "ps_error.h"

enum ps_optout_form {
    PS_OPTOUT_CLEARED = 0,   /* the file lists numbers cleared for use */
    PS_OPTOUT_OPTED_OUT = 1  /* the file lists opted-out numbers */
};

struct ps_optout;

ps_err_t ps_optout_new(enum ps_optout_form form, struct ps_optout **optout_p,
                       struct ps_error *err);
/* Wipes and frees. NULL is a no-op. */
void ps_optout_destroy(struct ps_optout *optout);

enum ps_optout_form ps_optout_form(const struct ps_optout *optout);

/* Loads a file of NHS numbers, one per line; a trailing comma, CR, spaces and
 * blank lines are allowed (the MESH .dat form); '#' starts a comment line.
 * Invalid lines are counted in *invalid_p (may be NULL) and skipped; the
 * message never repeats a line. Adds to what is held. */
ps_err_t ps_optout_load_file(struct ps_optout *optout, const char *path, size_t *invalid_p,
                             struct ps_error *err);

/* Adds or removes one number (a live update: key = NHS number; for the
 * cleared form "add" means cleared, for the opted-out form "opted out").
 * PS_ERR_NHS_INVALID for an invalid number. */
ps_err_t ps_optout_add(struct ps_optout *optout, const char *nhs, size_t len,
                       struct ps_error *err);
ps_err_t ps_optout_remove(struct ps_optout *optout, const char *nhs, size_t len,
                          struct ps_error *err);

/* 1 when the number is valid and cleared for secondary use, else 0. */
int ps_optout_cleared(const struct ps_optout *optout, const char *nhs, size_t len);

size_t ps_optout_count(const struct ps_optout *optout);

/* The state's date; 0 until set. set_as_of keeps the newer of the two. */
int64_t ps_optout_as_of(const struct ps_optout *optout);
void ps_optout_set_as_of(struct ps_optout *optout, int64_t as_of_ms);

/* 1 when as_of is set and no older than max_age_ms at now_ms. */
int ps_optout_fresh(const struct ps_optout *optout, int64_t now_ms, int64_t max_age_ms);

/* ------------------------------------------------------------------------
 * Added with the implementation (the declarations above are the contract).
 * ---------------------------------------------------------------------- */

/* For tests and memory audits: the table of keyed digests the state holds
 * (empty slots are zero), borrowed until the next add, remove, load or
 * destroy; its size in bytes through size_p (may be NULL). NULL (size 0)
 * before the first number is added. It holds no clear number. */
const void *ps_optout_table(const struct ps_optout *optout, size_t *size_p);

/* Notes on the functions above, as implemented:
 * - ps_optout_load_file is all or nothing: on any error the state is as it
 *   was and *invalid_p is not written. A UTF-8 byte order mark before the
 *   first line is ignored. Lines longer than 64 bytes are invalid. Errors:
 *   PS_ERR_IO (file), PS_ERR_NOMEM, PS_ERR_LIMIT (more than 80 million
 *   numbers held), PS_ERR_INVALID (NULL argument).
 * - ps_optout_add of a number already held and ps_optout_remove of one not
 *   held are PS_OK (live updates replay).
 * - ps_optout_cleared, count, as_of and fresh accept NULL (0: fail closed).
 */

#endif
