#include "ps_log.h"

#include <pthread.h>
#include <stdarg.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

static FILE *log_stream;
static int log_stream_set;
static enum ps_log_level log_level = PS_LOG_INFO;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static char log_context[96];

void ps_log_set_context(const char *policy, int64_t key_id)
{
    char esc[64];
    ps_log_json_escape(esc, sizeof(esc), policy ? policy : "");
    pthread_mutex_lock(&log_lock);
    if (key_id >= 0) {
        snprintf(log_context, sizeof(log_context), ",\"policy\":\"%.16s\",\"key_id\":%lld", esc,
                 (long long)key_id);
    } else {
        snprintf(log_context, sizeof(log_context), ",\"policy\":\"%.16s\"", esc);
    }
    pthread_mutex_unlock(&log_lock);
}

void ps_log_set_stream(FILE *stream)
{
    log_stream = stream;
    log_stream_set = 1;
}

void ps_log_set_level(enum ps_log_level level)
{
    log_level = level;
}

enum ps_log_level ps_log_get_level(void)
{
    return log_level;
}

int ps_log_level_parse(const char *name)
{
    static const char *names[] = {"debug", "info", "warn", "error"};
    for (int i = 0; i < 4; i++) {
        if (name && strcmp(name, names[i]) == 0) {
            return i;
        }
    }
    return -1;
}

size_t ps_log_json_escape(char *buf, size_t size, const char *s)
{
    size_t n = 0;
    if (size == 0) {
        return 0;
    }
    for (; s && *s; s++) {
        unsigned char c = (unsigned char)*s;
        char tmp[8];
        const char *piece = tmp;
        if (c == '"' || c == '\\') {
            tmp[0] = '\\';
            tmp[1] = (char)c;
            tmp[2] = '\0';
        } else if (c == '\n') {
            piece = "\\n";
        } else if (c == '\t') {
            piece = "\\t";
        } else if (c == '\r') {
            piece = "\\r";
        } else if (c < 0x20) {
            snprintf(tmp, sizeof(tmp), "\\u%04x", c);
        } else {
            tmp[0] = (char)c;
            tmp[1] = '\0';
        }
        size_t len = strlen(piece);
        if (n + len + 1 > size) {
            break;
        }
        memcpy(buf + n, piece, len);
        n += len;
    }
    buf[n] = '\0';
    return n;
}

void ps_log_write(enum ps_log_level level, const char *component, const char *code,
                  const char *fmt, ...)
{
    static const char *level_names[] = {"debug", "info", "warn", "error"};
    FILE *out = log_stream_set ? log_stream : stdout;
    if (!out || level < log_level) {
        return;
    }
    char msg[1024];
    char esc[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    ps_log_json_escape(esc, sizeof(esc), msg);

    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    gmtime_r(&tv.tv_sec, &tm);
    char when[40];
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);

    char line[2700];
    pthread_mutex_lock(&log_lock);
    snprintf(line, sizeof(line),
             "{\"time\":\"%s.%03ldZ\",\"level\":\"%s\",\"component\":\"%s\",\"code\":\"%s\","
             "\"msg\":\"%s\"%s}\n",
             when, (long)(tv.tv_usec / 1000), level_names[level], component, code, esc,
             log_context);
    fputs(line, out);
    fflush(out);
    pthread_mutex_unlock(&log_lock);
}
