/*
 * pseudostream consume: a topic as one JSON object per line, for people (the
 * Debian kcat cannot decode Avro).
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_decode.h"
#include "ps_buf.h"
#include "ps_log.h"
#include "ps_pipeline.h"
#include "ps_schema.h"

static void consume_help(void)
{
    printf("usage: pseudostream consume -b BOOTSTRAPS TOPIC [-c CONFIG] [--policy FILE] [--raw]\n\n"
           "Reads TOPIC from its beginning to its current end and prints one JSON object per\n"
           "message: partition, offset, key, headers, source (the input record a pipeline\n"
           "output came from, from its lineage header) and the decoded value. Input events are\n"
           "decoded with the input schemas (the config's, or the reference ones), destination\n"
           "records with the schemas derived from the policy (the config's, or the demo's).\n\n"
           "  -b, --bootstrap HOSTS   Kafka bootstrap servers\n"
           "  -c, --config FILE       service configuration (schemas, policy)\n"
           "      --policy FILE       policy whose derived schemas decode destination topics\n"
           "      --raw               print key, value and headers as hex, undecoded\n");
}

static void print_hex(const void *data, size_t len)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < len; i++) {
        printf("%02x", p[i]);
    }
}

static void print_string(const void *data, size_t len)
{
    char raw[4096], esc[8192];
    size_t n = len < sizeof(raw) - 1 ? len : sizeof(raw) - 1;
    memcpy(raw, data, n);
    raw[n] = '\0';
    ps_log_json_escape(esc, sizeof(esc), raw);
    printf("\"%s\"", esc);
}

static void print_raw(const struct ps_kafka_message *msg)
{
    printf("{\"partition\":%" PRId32 ",\"offset\":%" PRId64 ",\"key_hex\":\"", msg->partition,
           msg->offset);
    print_hex(msg->key, msg->key ? msg->key_len : 0);
    printf("\",\"value_hex\":\"");
    print_hex(msg->value, msg->value ? msg->len : 0);
    printf("\",\"headers\":[");
    for (size_t i = 0; i < msg->header_count; i++) {
        printf("%s[", i ? "," : "");
        print_string(msg->headers[i].name, strlen(msg->headers[i].name));
        printf(",\"");
        print_hex(msg->headers[i].value, msg->headers[i].value ? msg->headers[i].len : 0);
        printf("\"]");
    }
    printf("]}\n");
}

static void print_decoded(struct cli_decoder *cd, const struct ps_kafka_message *msg,
                          struct ps_buf *json)
{
    printf("{\"partition\":%" PRId32 ",\"offset\":%" PRId64 ",\"key\":", msg->partition,
           msg->offset);
    if (msg->key) {
        print_string(msg->key, msg->key_len);
    } else {
        printf("null");
    }
    printf(",\"headers\":{");
    for (size_t i = 0; i < msg->header_count; i++) {
        printf("%s", i ? "," : "");
        print_string(msg->headers[i].name, strlen(msg->headers[i].name));
        printf(":");
        print_string(msg->headers[i].value, msg->headers[i].value ? msg->headers[i].len : 0);
    }
    printf("}");
    /* The input record a pipeline output came from, parsed from its lineage
     * (or dead-letter) header, so readers need not parse it themselves. */
    const char *source = NULL;
    size_t source_len = 0;
    if (ps_pipeline_output_source(msg, &source, &source_len)) {
        printf(",\"source\":");
        print_string(source, source_len);
    }
    struct ps_event *ev = NULL;
    struct ps_error err = {0};
    ps_buf_reset(json);
    if (msg->value && cli_decoder_decode(cd, msg->value, msg->len, &ev, &err) == PS_OK &&
        ps_event_to_json(ev, json, &err) == PS_OK) {
        printf(",\"schema\":\"%s\",\"value\":%.*s}\n", ps_schema_name(ps_event_schema(ev)),
               (int)json->len, (const char *)json->data);
    } else {
        printf(",\"undecodable\":\"%s\",\"value_hex\":\"", ps_err_name(err.code));
        print_hex(msg->value, msg->value ? msg->len : 0);
        printf("\"}\n");
    }
}

int cmd_consume(int argc, char **argv)
{
    static const struct option options[] = {{"bootstrap", required_argument, NULL, 'b'},
                                            {"config", required_argument, NULL, 'c'},
                                            {"policy", required_argument, NULL, 'p'},
                                            {"raw", no_argument, NULL, 'r'},
                                            {"help", no_argument, NULL, 'h'},
                                            {NULL, 0, NULL, 0}};
    const char *bootstraps = NULL, *config = NULL, *policy = NULL;
    int raw = 0, c;
    while ((c = getopt_long(argc, argv, "b:c:h", options, NULL)) != -1) {
        switch (c) {
        case 'b': bootstraps = optarg; break;
        case 'c': config = optarg; break;
        case 'p': policy = optarg; break;
        case 'r': raw = 1; break;
        case 'h': consume_help(); return CLI_EXIT_OK;
        default: return cli_usage_error("consume", "unknown option");
        }
    }
    if (optind != argc - 1 || !bootstraps) {
        return cli_usage_error("consume", "give -b BOOTSTRAPS and one TOPIC");
    }
    ps_log_set_stream(stderr);
    struct ps_error err = {0};
    struct cli_decoder cd;
    struct ps_kafka_reader *reader = NULL;
    if (!raw && cli_decoder_open(config, policy, &cd, &err) != PS_OK) {
        return cli_fail(&err);
    }
    ps_err_t rc = ps_kafka_reader_new(bootstraps, argv[optind], NULL, 0, &reader, &err);
    struct ps_buf json;
    ps_buf_init(&json, 0);
    while (rc == PS_OK) {
        const struct ps_kafka_message *msg;
        rc = ps_kafka_reader_next(reader, 10000, &msg, &err);
        if (rc == PS_OK) {
            if (raw) {
                print_raw(msg);
            } else {
                print_decoded(&cd, msg, &json);
            }
        }
    }
    ps_buf_free(&json);
    ps_kafka_reader_destroy(reader);
    if (!raw) {
        cli_decoder_close(&cd);
    }
    return rc == PS_ERR_STOPPED ? CLI_EXIT_OK : cli_fail(&err);
}
