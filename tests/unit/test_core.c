/*
 * The core layer's small modules: ps_buf (bounded buffers), ps_error (error
 * detail), ps_tag (the tag vocabulary) and ps_log (JSON log lines).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ps_buf.h"
#include "ps_error.h"
#include "ps_log.h"
#include "ps_tag.h"
#include "ps_time.h"

/* ---- ps_buf ---- */

static void test_buf_max_limit(void **state)
{
    (void)state;
    struct ps_buf buf;
    ps_buf_init(&buf, 10);
    assert_null(buf.data);
    assert_int_equal(buf.len, 0);
    assert_int_equal(ps_buf_append(&buf, "abcdefghij", 10), PS_OK);
    assert_int_equal(buf.len, 10);
    assert_true(buf.cap <= 10); /* never allocates past the maximum */
    /* One byte more is refused and leaves the buffer as it was. */
    assert_int_equal(ps_buf_append(&buf, "X", 1), PS_ERR_LIMIT);
    assert_int_equal(buf.len, 10);
    assert_memory_equal(buf.data, "abcdefghij", 10);
    assert_int_equal(ps_buf_append_str(&buf, "Y"), PS_ERR_LIMIT);
    assert_int_equal(ps_buf_reserve(&buf, 1), PS_ERR_LIMIT);
    assert_int_equal(ps_buf_appendf(&buf, "%d", 7), PS_ERR_LIMIT);
    assert_int_equal(buf.len, 10);
    /* Zero bytes always fit. */
    assert_int_equal(ps_buf_append(&buf, NULL, 0), PS_OK);
    assert_int_equal(buf.len, 10);
    /* A huge request does not wrap around. */
    assert_int_equal(ps_buf_reserve(&buf, SIZE_MAX), PS_ERR_LIMIT);
    assert_int_equal(ps_buf_reserve(&buf, SIZE_MAX - 5), PS_ERR_LIMIT);
    ps_buf_free(&buf);
    assert_null(buf.data);
    assert_int_equal(buf.len, 0);

    /* A write larger than the maximum on an empty buffer. */
    ps_buf_init(&buf, 4);
    assert_int_equal(ps_buf_append(&buf, "12345", 5), PS_ERR_LIMIT);
    assert_int_equal(buf.len, 0);
    assert_int_equal(ps_buf_append(&buf, "1234", 4), PS_OK);
    assert_memory_equal(buf.data, "1234", 4);
    ps_buf_free(&buf);
}

static void test_buf_no_limit_and_growth(void **state)
{
    (void)state;
    struct ps_buf buf;
    ps_buf_init(&buf, 0);
    assert_true(buf.max == SIZE_MAX);
    char chunk[1000];
    for (size_t i = 0; i < sizeof(chunk); i++) {
        chunk[i] = (char)('a' + i % 26);
    }
    for (int i = 0; i < 300; i++) {
        assert_int_equal(ps_buf_append(&buf, chunk, sizeof(chunk)), PS_OK);
    }
    assert_int_equal(buf.len, 300000);
    assert_true(buf.cap >= buf.len);
    for (size_t off = 0; off < buf.len; off += 997) {
        assert_int_equal(buf.data[off], (uint8_t)('a' + (off % 1000) % 26));
    }
    ps_buf_free(&buf);
    ps_buf_free(NULL); /* no-op */
}

static void test_buf_reset_keeps_storage(void **state)
{
    (void)state;
    struct ps_buf buf;
    ps_buf_init(&buf, 0);
    assert_int_equal(ps_buf_append_str(&buf, "some bytes"), PS_OK);
    uint8_t *data = buf.data;
    size_t cap = buf.cap;
    assert_non_null(data);
    ps_buf_reset(&buf);
    assert_int_equal(buf.len, 0);
    assert_ptr_equal(buf.data, data);
    assert_int_equal(buf.cap, cap);
    /* Reuse without a new allocation while it fits. */
    assert_int_equal(ps_buf_append_str(&buf, "again"), PS_OK);
    assert_ptr_equal(buf.data, data);
    assert_int_equal(buf.len, 5);
    assert_memory_equal(buf.data, "again", 5);
    ps_buf_free(&buf);
    /* Freed buffers can be initialised and used again. */
    ps_buf_init(&buf, 8);
    assert_int_equal(ps_buf_append_str(&buf, "12345678"), PS_OK);
    ps_buf_free(&buf);
}

static void test_buf_appendf(void **state)
{
    (void)state;
    struct ps_buf buf;
    ps_buf_init(&buf, 0);
    assert_int_equal(ps_buf_appendf(&buf, "%s-%d", "ward", 14), PS_OK);
    assert_int_equal(buf.len, 7);
    assert_memory_equal(buf.data, "ward-14", 7);
    assert_int_equal(buf.data[buf.len], '\0'); /* a NUL kept after, not counted */
    assert_int_equal(ps_buf_appendf(&buf, "/%03u", 7u), PS_OK);
    assert_string_equal((const char *)buf.data, "ward-14/007");
    assert_int_equal(buf.len, 11);
    assert_int_equal(ps_buf_appendf(&buf, "%s", ""), PS_OK);
    assert_int_equal(buf.len, 11);
    assert_string_equal((const char *)buf.data, "ward-14/007");
    /* Long formatted text (past the first allocation). */
    ps_buf_reset(&buf);
    assert_int_equal(ps_buf_appendf(&buf, "%0600d|%s", 5, "end"), PS_OK);
    assert_int_equal(buf.len, 604);
    assert_int_equal(buf.data[599], '5');
    assert_string_equal((const char *)buf.data + 600, "|end");
    ps_buf_free(&buf);

    /* Under a maximum: refused whole, buffer unchanged. */
    ps_buf_init(&buf, 8);
    assert_int_equal(ps_buf_appendf(&buf, "%s", "abc"), PS_OK);
    assert_int_equal(ps_buf_appendf(&buf, "%s", "defghijk"), PS_ERR_LIMIT);
    assert_int_equal(buf.len, 3);
    assert_memory_equal(buf.data, "abc", 3);
    ps_buf_free(&buf);
}

/* ---- ps_error ---- */

static void test_error_set(void **state)
{
    (void)state;
    struct ps_error err;
    ps_error_clear(&err);
    assert_int_equal(err.code, PS_OK);
    assert_string_equal(err.msg, "");
    assert_int_equal(ps_error_set(&err, PS_ERR_DECODE, "field '%s' at depth %d", "pid.name", 3),
                     PS_ERR_DECODE);
    assert_int_equal(err.code, PS_ERR_DECODE);
    assert_string_equal(err.msg, "field 'pid.name' at depth 3");
    assert_string_equal(err.file, "");
    assert_int_equal(err.line, 0);
    assert_int_equal(err.col, 0);

    /* set after set_at forgets the location. */
    ps_error_set_at(&err, PS_ERR_CONFIG, "policy.yaml", 4, 7, "first");
    ps_error_set(&err, PS_ERR_IO, "second");
    assert_int_equal(err.code, PS_ERR_IO);
    assert_string_equal(err.msg, "second");
    assert_string_equal(err.file, "");
    assert_int_equal(err.line, 0);
    assert_int_equal(err.col, 0);

    /* A long message is cut, NUL-terminated. */
    char big[2 * PS_ERROR_MSG_MAX];
    memset(big, 'm', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    ps_error_set(&err, PS_ERR_LIMIT, "%s", big);
    assert_int_equal(strlen(err.msg), PS_ERROR_MSG_MAX - 1);
}

static void test_error_set_at(void **state)
{
    (void)state;
    struct ps_error err;
    ps_error_clear(&err);
    assert_int_equal(ps_error_set_at(&err, PS_ERR_CONFIG, "policy/demo.yaml", 14, 17,
                                     "unknown action '%s'", "hash"),
                     PS_ERR_CONFIG);
    assert_int_equal(err.code, PS_ERR_CONFIG);
    assert_string_equal(err.file, "policy/demo.yaml");
    assert_int_equal(err.line, 14);
    assert_int_equal(err.col, 17);
    assert_string_equal(err.msg, "unknown action 'hash'");
    /* A NULL file is an empty one. */
    ps_error_set_at(&err, PS_ERR_SCHEMA, NULL, 2, 3, "x");
    assert_string_equal(err.file, "");
    assert_int_equal(err.line, 2);
}

static void test_error_prefix(void **state)
{
    (void)state;
    struct ps_error err;
    ps_error_clear(&err);
    ps_error_set_at(&err, PS_ERR_CONFIG, "p.yaml", 9, 5, "bad rule");
    assert_int_equal(ps_error_prefix(&err, "destination '%s'", "research"), PS_ERR_CONFIG);
    assert_string_equal(err.msg, "destination 'research': bad rule");
    assert_int_equal(err.code, PS_ERR_CONFIG);
    assert_string_equal(err.file, "p.yaml");
    assert_int_equal(err.line, 9);
    assert_int_equal(err.col, 5);
    ps_error_prefix(&err, "policy");
    assert_string_equal(err.msg, "policy: destination 'research': bad rule");
}

static void test_error_format(void **state)
{
    (void)state;
    struct ps_error err;
    char buf[PS_ERROR_MSG_MAX + PS_ERROR_FILE_MAX + 32];
    ps_error_clear(&err);
    ps_error_set_at(&err, PS_ERR_CONFIG, "policy/demo.yaml", 14, 17, "unknown action");
    ps_error_format(&err, buf, sizeof(buf));
    assert_string_equal(buf, "policy/demo.yaml:14:17: unknown action");
    ps_error_set_at(&err, PS_ERR_CONFIG, "policy/demo.yaml", 14, 0, "unknown action");
    ps_error_format(&err, buf, sizeof(buf));
    assert_string_equal(buf, "policy/demo.yaml:14: unknown action");
    ps_error_set_at(&err, PS_ERR_IO, "keyring.yaml", 0, 0, "cannot open");
    ps_error_format(&err, buf, sizeof(buf));
    assert_string_equal(buf, "keyring.yaml: cannot open");
    ps_error_set(&err, PS_ERR_FRAME, "no location");
    ps_error_format(&err, buf, sizeof(buf));
    assert_string_equal(buf, "no location");

    /* A small buffer is truncated, never overrun. */
    char small[8];
    memset(small, 'x', sizeof(small));
    ps_error_set_at(&err, PS_ERR_CONFIG, "policy/demo.yaml", 14, 17, "unknown action");
    ps_error_format(&err, small, sizeof(small));
    assert_string_equal(small, "policy/");
    small[0] = 'z';
    ps_error_format(&err, small, 0); /* size 0: nothing written */
    assert_int_equal(small[0], 'z');
}

static void test_error_null_safe(void **state)
{
    (void)state;
    ps_error_clear(NULL);
    assert_int_equal(ps_error_set(NULL, PS_ERR_DECODE, "x %d", 1), PS_ERR_DECODE);
    assert_int_equal(ps_error_set_at(NULL, PS_ERR_CONFIG, "f", 1, 2, "y"), PS_ERR_CONFIG);
    assert_int_equal(ps_error_prefix(NULL, "z"), PS_OK);
    char buf[8] = "keep";
    ps_error_format(NULL, buf, sizeof(buf));
    assert_string_equal(buf, "keep");
}

static void test_error_names(void **state)
{
    (void)state;
    assert_string_equal(ps_err_name(PS_OK), "ok");
    assert_string_equal(ps_err_name(PS_ERR_FRAME), "frame");
    assert_string_equal(ps_err_name(PS_ERR_SCHEMA_UNKNOWN), "schema_unknown");
    assert_string_equal(ps_err_name(PS_ERR_DECODE), "decode");
    assert_string_equal(ps_err_name(PS_ERR_LIMIT), "limit");
    assert_string_equal(ps_err_name(PS_ERR_NHS_INVALID), "nhs_number_invalid");
    assert_string_equal(ps_err_name(PS_ERR_NO_KEY), "no_key");
    assert_string_equal(ps_err_name(PS_ERR_NO_EVENT_TIME), "no_event_time");
    assert_string_equal(ps_err_name(PS_ERR_STOPPED), "stopped");
    assert_string_equal(ps_err_name((ps_err_t)999), "unknown");
    /* Codes are stable: they are on the wire as reasons. */
    assert_int_equal(PS_ERR_FRAME, 10);
    assert_int_equal(PS_ERR_NHS_INVALID, 21);
    assert_int_equal(PS_ERR_NO_KEY, 22);
}

/* ---- ps_tag ---- */

static void test_tag_round_trip(void **state)
{
    (void)state;
    const char *const *names = ps_tag_names();
    for (int t = 0; t < PS_TAG_COUNT; t++) {
        const char *name = ps_tag_name((enum ps_tag)t);
        assert_string_equal(names[t], name);
        assert_int_equal(ps_tag_parse(name), t);
        /* The kind is the name in lower case. */
        const char *kind = ps_tag_kind((enum ps_tag)t);
        assert_int_equal(strlen(kind), strlen(name));
        for (size_t i = 0; name[i]; i++) {
            char want = (name[i] >= 'A' && name[i] <= 'Z') ? (char)(name[i] - 'A' + 'a')
                                                             : name[i];
            assert_int_equal(kind[i], want);
        }
    }
    assert_null(names[PS_TAG_COUNT]);
    assert_string_equal(ps_tag_name(PS_TAG_NHS_NUMBER), "NHS_NUMBER");
    assert_string_equal(ps_tag_kind(PS_TAG_NHS_NUMBER), "nhs_number");
    assert_string_equal(ps_tag_kind(PS_TAG_LOCAL_ID), "local_id");
    assert_string_equal(ps_tag_name(PS_TAG_PII), "PII");
    assert_int_equal(ps_tag_parse("PROCEDURE_CODE"), PS_TAG_PROCEDURE_CODE);
    assert_string_equal(ps_tag_name(PS_TAG_COUNT), "?");
    assert_string_equal(ps_tag_kind((enum ps_tag)-1), "?");
}

static void test_tag_unknown(void **state)
{
    (void)state;
    assert_int_equal(ps_tag_parse("nhs_number"), -1); /* case matters */
    assert_int_equal(ps_tag_parse("NHS_NUMBERS"), -1);
    assert_int_equal(ps_tag_parse("NHS"), -1);
    assert_int_equal(ps_tag_parse(""), -1);
    assert_int_equal(ps_tag_parse("SSN"), -1);
    assert_int_equal(ps_tag_parse(NULL), -1);
}

static void test_tag_classes(void **state)
{
    (void)state;
    const enum ps_tag direct[] = {PS_TAG_NHS_NUMBER, PS_TAG_LOCAL_ID, PS_TAG_PERSON_NAME,
                                  PS_TAG_ADDRESS, PS_TAG_TELECOM, PS_TAG_EMAIL};
    const enum ps_tag quasi[] = {PS_TAG_POSTCODE, PS_TAG_BIRTH_DATE, PS_TAG_DEATH_DATE,
                                 PS_TAG_EVENT_DATE, PS_TAG_SEX, PS_TAG_ETHNICITY,
                                 PS_TAG_GP_PRACTICE};
    const enum ps_tag sensitive[] = {PS_TAG_FREE_TEXT, PS_TAG_DIAGNOSIS_CODE,
                                     PS_TAG_PROCEDURE_CODE};
    for (size_t i = 0; i < sizeof(direct) / sizeof(direct[0]); i++) {
        assert_int_equal(ps_tag_class_of(direct[i]), PS_TAG_CLASS_DIRECT);
    }
    for (size_t i = 0; i < sizeof(quasi) / sizeof(quasi[0]); i++) {
        assert_int_equal(ps_tag_class_of(quasi[i]), PS_TAG_CLASS_QUASI);
    }
    for (size_t i = 0; i < sizeof(sensitive) / sizeof(sensitive[0]); i++) {
        assert_int_equal(ps_tag_class_of(sensitive[i]), PS_TAG_CLASS_SENSITIVE);
    }
    assert_int_equal(ps_tag_class_of(PS_TAG_PII), PS_TAG_CLASS_NONE);
    assert_int_equal(ps_tag_class_of(PS_TAG_COUNT), PS_TAG_CLASS_NONE);
}

static void test_tag_mask_format(void **state)
{
    (void)state;
    char buf[256];
    ps_tag_mask_format(PS_TAG_BIT(PS_TAG_PII) | PS_TAG_BIT(PS_TAG_NHS_NUMBER), buf, sizeof(buf));
    assert_string_equal(buf, "NHS_NUMBER,PII"); /* enum order, not bit order given */
    ps_tag_mask_format(PS_TAG_BIT(PS_TAG_POSTCODE), buf, sizeof(buf));
    assert_string_equal(buf, "POSTCODE");
    ps_tag_mask_format(0, buf, sizeof(buf));
    assert_string_equal(buf, "");
    /* Every tag, then round trip by splitting. */
    ps_tag_mask_format((1u << PS_TAG_COUNT) - 1, buf, sizeof(buf));
    uint32_t back = 0;
    char copy[256];
    snprintf(copy, sizeof(copy), "%s", buf);
    for (char *tok = strtok(copy, ","); tok; tok = strtok(NULL, ",")) {
        int t = ps_tag_parse(tok);
        assert_true(t >= 0);
        back |= PS_TAG_BIT(t);
    }
    assert_int_equal(back, (1u << PS_TAG_COUNT) - 1);
    /* A small buffer stays NUL-terminated within its size. */
    char small[14];
    memset(small, 'x', sizeof(small));
    ps_tag_mask_format(PS_TAG_BIT(PS_TAG_NHS_NUMBER) | PS_TAG_BIT(PS_TAG_LOCAL_ID), small,
                       sizeof(small));
    assert_non_null(memchr(small, '\0', sizeof(small)));
    assert_int_equal(strncmp(small, "NHS_NUMBER", 10), 0);
}

/* ---- ps_log ---- */

static void test_log_json_escape(void **state)
{
    (void)state;
    char buf[64];
    assert_int_equal(ps_log_json_escape(buf, sizeof(buf), "plain"), 5);
    assert_string_equal(buf, "plain");
    ps_log_json_escape(buf, sizeof(buf), "say \"hi\"");
    assert_string_equal(buf, "say \\\"hi\\\"");
    ps_log_json_escape(buf, sizeof(buf), "C:\\dir");
    assert_string_equal(buf, "C:\\\\dir");
    ps_log_json_escape(buf, sizeof(buf), "a\nb\tc\rd");
    assert_string_equal(buf, "a\\nb\\tc\\rd");
    size_t n = ps_log_json_escape(buf, sizeof(buf), "\x01\x1f\b\f");
    assert_string_equal(buf, "\\u0001\\u001f\\u0008\\u000c");
    assert_int_equal(n, strlen(buf));
    /* UTF-8 passes through. */
    ps_log_json_escape(buf, sizeof(buf), "caf\xc3\xa9");
    assert_string_equal(buf, "caf\xc3\xa9");
    ps_log_json_escape(buf, sizeof(buf), NULL);
    assert_string_equal(buf, "");

    /* Truncation: never past size, never half an escape. */
    char small[4];
    assert_int_equal(ps_log_json_escape(small, sizeof(small), "abcdef"), 3);
    assert_string_equal(small, "abc");
    assert_int_equal(ps_log_json_escape(small, sizeof(small), "a\"b"), 3);
    assert_string_equal(small, "a\\\"");
    assert_int_equal(ps_log_json_escape(small, sizeof(small), "ab\""), 2);
    assert_string_equal(small, "ab");
    assert_int_equal(ps_log_json_escape(small, sizeof(small), "\x01"), 0);
    assert_string_equal(small, "");
    assert_int_equal(ps_log_json_escape(small, 0, "abc"), 0);

    /* The escaped text parses back as a JSON string to the original. */
    const char *nasty = "q\"b\\s/\x02\n\t\x7f end";
    char esc[128], doc[160];
    ps_log_json_escape(esc, sizeof(esc), nasty);
    snprintf(doc, sizeof(doc), "[\"%s\"]", esc);
    json_error_t jerr;
    json_t *arr = json_loads(doc, 0, &jerr);
    assert_non_null(arr);
    assert_string_equal(json_string_value(json_array_get(arr, 0)), nasty);
    json_decref(arr);
}

static char *read_all(FILE *f)
{
    fflush(f);
    long size = ftell(f);
    assert_true(size >= 0);
    rewind(f);
    char *text = calloc(1, (size_t)size + 1);
    assert_non_null(text);
    assert_int_equal(fread(text, 1, (size_t)size, f), (size_t)size);
    return text;
}

static void test_log_lines_are_json(void **state)
{
    (void)state;
    FILE *f = tmpfile();
    assert_non_null(f);
    enum ps_log_level old = ps_log_get_level();
    ps_log_set_stream(f);
    ps_log_set_level(PS_LOG_INFO);
    int64_t before = ps_time_now_ms();
    PS_INFO("pipeline", "batch_committed", "committed %d records to \"%s\"", 42, "ward\n2");
    PS_DEBUG("pipeline", "hidden", "below the level");
    PS_WARN("kafka", "broker_down", "retry in %d ms", 500);
    ps_log_write(PS_LOG_DEBUG, "x", "also_hidden", "direct call below the level");
    ps_log_write(PS_LOG_ERROR, "ops", "disk.full_2", "tab\there");
    int64_t after = ps_time_now_ms();
    char *text = read_all(f);
    ps_log_set_stream(stdout);
    ps_log_set_level(old);
    fclose(f);

    /* Three lines, each one JSON object with exactly the five keys. */
    const char *want_level[] = {"info", "warn", "error"};
    const char *want_component[] = {"pipeline", "kafka", "ops"};
    const char *want_code[] = {"batch_committed", "broker_down", "disk.full_2"};
    const char *want_msg[] = {"committed 42 records to \"ward\n2\"", "retry in 500 ms",
                              "tab\there"};
    int lines = 0;
    char *save = NULL;
    assert_int_equal(text[strlen(text) - 1], '\n');
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        assert_true(lines < 3);
        json_error_t jerr;
        json_t *obj = json_loads(line, 0, &jerr);
        if (!obj) {
            fail_msg("line %d is not JSON (%s): %s", lines + 1, jerr.text, line);
        }
        assert_true(json_is_object(obj));
        assert_int_equal(json_object_size(obj), 5);
        const char *when = json_string_value(json_object_get(obj, "time"));
        assert_non_null(when);
        assert_int_equal(strlen(when), 24); /* YYYY-MM-DDThh:mm:ss.fffZ */
        int64_t ms = 0;
        assert_int_equal(ps_time_parse_iso(when, &ms), PS_OK);
        assert_true(ms >= before - 1000 && ms <= after + 1000);
        assert_string_equal(json_string_value(json_object_get(obj, "level")), want_level[lines]);
        assert_string_equal(json_string_value(json_object_get(obj, "component")),
                            want_component[lines]);
        assert_string_equal(json_string_value(json_object_get(obj, "code")), want_code[lines]);
        assert_string_equal(json_string_value(json_object_get(obj, "msg")), want_msg[lines]);
        json_decref(obj);
        lines++;
    }
    assert_int_equal(lines, 2 + 1);
    free(text);
}

static void test_log_long_message_stays_one_line(void **state)
{
    (void)state;
    FILE *f = tmpfile();
    assert_non_null(f);
    ps_log_set_stream(f);
    /* Longer than the message buffer, all characters that escape to six. */
    char msg[3000];
    memset(msg, '\x01', sizeof(msg) - 1);
    msg[sizeof(msg) - 1] = '\0';
    ps_log_write(PS_LOG_ERROR, "test", "long", "%s", msg);
    memset(msg, '"', sizeof(msg) - 1);
    ps_log_write(PS_LOG_ERROR, "test", "long", "%s", msg);
    char *text = read_all(f);
    ps_log_set_stream(stdout);
    fclose(f);
    int lines = 0;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        json_error_t jerr;
        json_t *obj = json_loads(line, 0, &jerr);
        if (!obj) {
            fail_msg("long line %d is not JSON: %s", lines + 1, jerr.text);
        }
        assert_string_equal(json_string_value(json_object_get(obj, "code")), "long");
        json_decref(obj);
        lines++;
    }
    assert_int_equal(lines, 2);
    free(text);
}

static void test_log_silenced_and_levels(void **state)
{
    (void)state;
    ps_log_set_stream(NULL); /* silences, must not crash */
    ps_log_write(PS_LOG_ERROR, "test", "silent", "nothing");
    ps_log_set_stream(stdout);
    assert_int_equal(ps_log_level_parse("debug"), PS_LOG_DEBUG);
    assert_int_equal(ps_log_level_parse("info"), PS_LOG_INFO);
    assert_int_equal(ps_log_level_parse("warn"), PS_LOG_WARN);
    assert_int_equal(ps_log_level_parse("error"), PS_LOG_ERROR);
    assert_int_equal(ps_log_level_parse("ERROR"), -1);
    assert_int_equal(ps_log_level_parse("warning"), -1);
    assert_int_equal(ps_log_level_parse(NULL), -1);
    enum ps_log_level old = ps_log_get_level();
    ps_log_set_level(PS_LOG_ERROR);
    assert_int_equal(ps_log_get_level(), PS_LOG_ERROR);
    ps_log_set_level(old);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buf_max_limit),
        cmocka_unit_test(test_buf_no_limit_and_growth),
        cmocka_unit_test(test_buf_reset_keeps_storage),
        cmocka_unit_test(test_buf_appendf),
        cmocka_unit_test(test_error_set),
        cmocka_unit_test(test_error_set_at),
        cmocka_unit_test(test_error_prefix),
        cmocka_unit_test(test_error_format),
        cmocka_unit_test(test_error_null_safe),
        cmocka_unit_test(test_error_names),
        cmocka_unit_test(test_tag_round_trip),
        cmocka_unit_test(test_tag_unknown),
        cmocka_unit_test(test_tag_classes),
        cmocka_unit_test(test_tag_mask_format),
        cmocka_unit_test(test_log_json_escape),
        cmocka_unit_test(test_log_lines_are_json),
        cmocka_unit_test(test_log_long_message_stays_one_line),
        cmocka_unit_test(test_log_silenced_and_levels),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
