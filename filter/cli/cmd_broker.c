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
           "                           [--bootstrap-file FILE] [--fault-file FILE]\n\n"
           "Runs the embedded development broker (librdkafka's mock cluster) on loopback,\n"
           "prints its bootstrap address on the first line of stdout, and runs until\n"
           "SIGINT or SIGTERM. Development and tests only: it writes no transaction\n"
           "markers and keeps 5 MiB per partition.\n\n"
           "  --brokers N              brokers in the cluster (default 3)\n"
           "  --topic NAME[:P]         create a topic with P partitions (default 6); repeatable\n"
           "  --bootstrap-file FILE    also write the bootstrap address to FILE\n"
           "  --fault-file FILE        fault injection for tests: when FILE appears, each line\n"
           "                           is applied and the file removed. Lines:\n"
           "                             fail API_KEY KAFKA_ERROR COUNT  (e.g. fail 26 90 1:\n"
           "                                                              EndTxn PRODUCER_FENCED)\n"
           "                             down BROKER_ID | up BROKER_ID\n"
           "                             rtt BROKER_ID MS\n"
           "                             leader TOPIC PARTITION BROKER_ID\n");
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

/* Applies one line of the fault file; returns 0 or prints why not. */
static int apply_fault(struct ps_kafka_broker *broker, const char *line)
{
    struct ps_error err = {0};
    char topic[256];
    int a = 0, b = 0, c = 0;
    ps_err_t rc;
    if (sscanf(line, "fail %d %d %d", &a, &b, &c) == 3) {
        rc = ps_kafka_broker_fail_requests(broker, a, (size_t)(c > 0 ? c : 0), b, &err);
    } else if (sscanf(line, "down %d", &a) == 1) {
        rc = ps_kafka_broker_set_down(broker, a, 1, &err);
    } else if (sscanf(line, "up %d", &a) == 1) {
        rc = ps_kafka_broker_set_down(broker, a, 0, &err);
    } else if (sscanf(line, "rtt %d %d", &a, &b) == 2) {
        rc = ps_kafka_broker_set_rtt(broker, a, b, &err);
    } else if (sscanf(line, "leader %255s %d %d", topic, &a, &b) == 3) {
        rc = ps_kafka_broker_partition_leader(broker, topic, a, b, &err);
    } else {
        rc = ps_error_set(&err, PS_ERR_INVALID, "fault file: cannot read '%s'", line);
    }
    if (rc != PS_OK) {
        cli_fail(&err);
        return -1;
    }
    PS_INFO("broker", "fault_injected", "fault injected: %s", line);
    return 0;
}

/* Reads and removes the fault file when it exists. */
static void poll_faults(struct ps_kafka_broker *broker, const char *path)
{
    FILE *fp = fopen(path, "r");
    if (!fp) {
        return;
    }
    char line[512];
    while (fgets(line, sizeof(line), fp)) {
        line[strcspn(line, "\r\n")] = '\0';
        if (line[0] && line[0] != '#') {
            apply_fault(broker, line);
        }
    }
    fclose(fp);
    unlink(path);
}

int cmd_broker(int argc, char **argv)
{
    static const struct option options[] = {{"brokers", required_argument, NULL, 'n'},
                                            {"topic", required_argument, NULL, 't'},
                                            {"bootstrap-file", required_argument, NULL, 'f'},
                                            {"fault-file", required_argument, NULL, 'F'},
                                            {"help", no_argument, NULL, 'h'},
                                            {NULL, 0, NULL, 0}};
    int brokers = 3;
    const char *bootstrap_file = NULL;
    const char *fault_file = NULL;
    const char *topics[64];
    int topic_count = 0;
    int c;
    while ((c = getopt_long(argc, argv, "n:t:f:F:h", options, NULL)) != -1) {
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
        case 'F':
            fault_file = optarg;
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
            if (fault_file) {
                poll_faults(broker, fault_file);
            }
            usleep(100 * 1000);
        }
    }
    ps_kafka_broker_destroy(broker);
    return rc;
}
