/*
 * pseudostream broker: the embedded development broker. librdkafka's mock
 * cluster speaks the real Kafka protocol on loopback; it is for development
 * and tests only (no transaction markers, no transactional offsets, 5 MiB
 * per partition).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "ps_kafka.h"
#include "ps_log.h"

static void broker_help(void)
{
    printf("usage: pseudostream broker [--brokers N] [--topic NAME[:PARTITIONS]]...\n"
           "                           [--bootstrap-file FILE]\n\n"
           "Runs the embedded development broker (librdkafka's mock cluster) on loopback,\n"
           "prints its bootstrap address on the first line of stdout, and runs until\n"
           "SIGINT or SIGTERM. Development and tests only: it writes no transaction\n"
           "markers and keeps 5 MiB per partition.\n\n"
           "  --brokers N              brokers in the cluster (default 3)\n"
           "  --topic NAME[:P]         create a topic with P partitions (default 6); repeatable\n"
           "  --bootstrap-file FILE    also write the bootstrap address to FILE\n");
}

static int create_topic(struct ps_kafka_broker *broker, const char *spec)
{
    char name[256];
    int partitions = 6;
    snprintf(name, sizeof(name), "%s", spec);
    char *colon = strrchr(name, ':');
    if (colon) {
        *colon = '\0';
        partitions = atoi(colon + 1);
        if (partitions <= 0) {
            return cli_usage_error("broker", "bad partition count in --topic %s", spec);
        }
    }
    struct ps_error err = {0};
    if (ps_kafka_broker_topic_create(broker, name, partitions, &err) != PS_OK) {
        return cli_fail(&err);
    }
    return CLI_EXIT_OK;
}

int cmd_broker(int argc, char **argv)
{
    static const struct option options[] = {{"brokers", required_argument, NULL, 'n'},
                                            {"topic", required_argument, NULL, 't'},
                                            {"bootstrap-file", required_argument, NULL, 'f'},
                                            {"help", no_argument, NULL, 'h'},
                                            {NULL, 0, NULL, 0}};
    int brokers = 3;
    const char *bootstrap_file = NULL;
    const char *topics[64];
    int topic_count = 0;
    int c;
    while ((c = getopt_long(argc, argv, "n:t:f:h", options, NULL)) != -1) {
        switch (c) {
        case 'n':
            brokers = atoi(optarg);
            break;
        case 't':
            if (topic_count < 64) {
                topics[topic_count++] = optarg;
            }
            break;
        case 'f':
            bootstrap_file = optarg;
            break;
        case 'h':
            broker_help();
            return CLI_EXIT_OK;
        default:
            return cli_usage_error("broker", "unknown option");
        }
    }
    if (brokers < 1 || brokers > 9) {
        return cli_usage_error("broker", "--brokers must be 1 to 9");
    }
    ps_log_set_stream(stderr);
    cli_signals_install();
    struct ps_error err = {0};
    struct ps_kafka_broker *broker = NULL;
    if (ps_kafka_broker_new(brokers, &broker, &err) != PS_OK) {
        return cli_fail(&err);
    }
    int rc = CLI_EXIT_OK;
    for (int i = 0; i < topic_count && rc == CLI_EXIT_OK; i++) {
        rc = create_topic(broker, topics[i]);
    }
    if (rc == CLI_EXIT_OK) {
        const char *bootstraps = ps_kafka_broker_bootstraps(broker);
        printf("%s\n", bootstraps);
        fflush(stdout);
        if (bootstrap_file) {
            FILE *fp = fopen(bootstrap_file, "w");
            if (fp) {
                fprintf(fp, "%s\n", bootstraps);
                fclose(fp);
            }
        }
        while (!cli_stop) {
            usleep(100 * 1000);
        }
    }
    ps_kafka_broker_destroy(broker);
    return rc;
}
