/*
 * Fuzz target: redis reply handling, through a fake server.  The redis
 * plugin (plugins/redis, compiled in) talks to a unix socket whose server
 * answers every connection with the input's bytes, whatever was asked,
 * then ends its side of the stream; so the fuzzer chooses every reply the
 * client parses: AUTH/SELECT answers, MGET arrays, SET/DEL/EVALSHA/SCAN
 * results, INFO text, and whatever hiredis makes of garbage.
 *
 * Input: an options byte (bits 0-2: the operation -- get, set, del, lock,
 * unlock, flush, scan, stats; bit 3: a password, so AUTH is sent first;
 * bit 4: db 1, so SELECT is; bit 5: flushdb = yes; bit 6: flush the whole
 * keyspace), a count byte (1..16 keys or items), then the reply stream.
 *
 * Properties: no crash, leak or overread; the status is one of
 * hermes_be_status; callbacks name only indexes of the batch and their
 * values are readable; every operation ends within the plugin's
 * command_timeout_ms bound (it sees EOF at once, so well within 5 s).
 */
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <hermes/backend.h>

#include "fuzz.h"

/* Defined by HERMES_BACKEND_DEFINE in plugins/redis/redis.c. */
const hermes_backend *hermes_backend_entry(void);

static char dir[64], sock_path[100];
static int listen_fd = -1;
static pthread_mutex_t reply_mu = PTHREAD_MUTEX_INITIALIZER;
static unsigned char *reply;
static size_t reply_len;

static void *serve_one(void *arg)
{
    int fd = (int)(intptr_t)arg;
    unsigned char *copy = NULL;
    size_t n;
    pthread_mutex_lock(&reply_mu);
    n = reply_len;
    if (n && (copy = malloc(n)) != NULL)
        memcpy(copy, reply, n);
    pthread_mutex_unlock(&reply_mu);
    char buf[4096];
    /* Answer once the client has asked something, so that it reads. */
    ssize_t got = read(fd, buf, sizeof buf);
    for (size_t off = 0; got > 0 && copy && off < n;) {
        ssize_t w = send(fd, copy + off, n - off, MSG_NOSIGNAL);
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    free(copy);
    shutdown(fd, SHUT_WR);
    while (got > 0)
        got = read(fd, buf, sizeof buf);
    close(fd);
    return NULL;
}

static void *server(void *arg)
{
    (void)arg;
    for (;;) {
        int fd = accept(listen_fd, NULL, NULL);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            return NULL;
        }
        pthread_t t;
        pthread_attr_t a;
        pthread_attr_init(&a);
        pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
        if (pthread_create(&t, &a, serve_one, (void *)(intptr_t)fd) != 0)
            close(fd);
        pthread_attr_destroy(&a);
    }
}

static void cleanup(void)
{
    unlink(sock_path);
    rmdir(dir);
}

static void start_server(void)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/hermes-fuzz-redis-XXXXXX",
             tmp && strlen(tmp) < 32 ? tmp : "/tmp");
    FUZZ_CHECK(mkdtemp(dir) != NULL);
    snprintf(sock_path, sizeof sock_path, "%s/redis.sock", dir);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", sock_path);
    listen_fd = socket(AF_UNIX, SOCK_STREAM, 0);
    FUZZ_CHECK(listen_fd >= 0);
    FUZZ_CHECK(bind(listen_fd, (struct sockaddr *)&sa, sizeof sa) == 0);
    FUZZ_CHECK(listen(listen_fd, 64) == 0);
    atexit(cleanup);
    pthread_t t;
    FUZZ_CHECK(pthread_create(&t, NULL, server, NULL) == 0);
    pthread_detach(t);
}

/* ------------------------------------------------------------ the host */

static void host_log(void *ctx, int level, const char *msg)
{
    (void)ctx;
    (void)level;
    FUZZ_CHECK(msg != NULL);
    (void)strlen(msg);
}

static uint64_t clock_ms(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint64_t host_now_ms(void *ctx)
{
    (void)ctx;
    return clock_ms(CLOCK_REALTIME);
}

static uint64_t host_mono_ns(void *ctx)
{
    (void)ctx;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int host_random(void *ctx, void *buf, size_t len)
{
    (void)ctx;
    memset(buf, 0x5a, len);
    return 0;
}

static const hermes_host host = {
    .struct_size = sizeof(hermes_host),
    .log = host_log,
    .now_ms = host_now_ms,
    .monotonic_ns = host_mono_ns,
    .random = host_random,
    .config_source = "<fuzz>",
};

/* --------------------------------------------------------- callbacks */

typedef struct batch {
    size_t n;
    unsigned sum;
} batch;

static void on_value(void *arg, size_t index, const void *value, size_t len)
{
    batch *b = arg;
    FUZZ_CHECK(index < b->n);
    FUZZ_CHECK(value != NULL || len == 0);
    const unsigned char *p = value;
    for (size_t i = 0; i < len; i++)
        b->sum += p[i]; /* every byte must be readable */
}

static int on_scan(void *arg, const void *key, size_t klen, const void *value,
                   size_t vlen, int64_t ttl_ms)
{
    batch *b = arg;
    const unsigned char *k = key, *v = value;
    for (size_t i = 0; i < klen; i++)
        b->sum += k[i];
    for (size_t i = 0; i < vlen; i++)
        b->sum += v[i];
    (void)ttl_ms;
    return 0;
}

static void on_stat(void *arg, const char *name, const char *value)
{
    batch *b = arg;
    FUZZ_CHECK(name && value);
    b->sum += (unsigned)strlen(name) + (unsigned)strlen(value);
}

#define KEY(s) ((hermes_bytes){s, sizeof s - 1})

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const hermes_backend *be;
    if (!be) {
        be = hermes_backend_entry();
        start_server();
    }
    fuzz_in in = {data, size};
    unsigned opts = fuzz_byte(&in);
    size_t n = fuzz_byte(&in) % 16 + 1;
    pthread_mutex_lock(&reply_mu);
    reply = (unsigned char *)in.p;
    reply_len = in.n;
    pthread_mutex_unlock(&reply_mu);

    hermes_kv kv[8];
    size_t nkv = 0;
    kv[nkv++] = (hermes_kv){"socket", sock_path, 1};
    kv[nkv++] = (hermes_kv){"pool_size", "1", 2};
    kv[nkv++] = (hermes_kv){"command_timeout_ms", "1000", 3};
    kv[nkv++] = (hermes_kv){"connect_timeout_ms", "1000", 4};
    if (opts & 8)
        kv[nkv++] = (hermes_kv){"password", "secret", 5};
    if (opts & 16)
        kv[nkv++] = (hermes_kv){"db", "1", 6};
    kv[nkv++] = (hermes_kv){"flushdb", (opts & 32) ? "yes" : "no", 7};
    void *st = NULL;
    hermes_open_error err;
    FUZZ_CHECK(be->open(&host, kv, nkv, &st, &err) == HERMES_BE_OK);

    hermes_bytes keys[16];
    hermes_item items[16];
    for (size_t i = 0; i < n; i++) {
        keys[i] = (i & 1) ? KEY("cache:tag:t") : KEY("cache:entry:f:x");
        items[i] = (hermes_item){keys[i], KEY("value"), 1000,
                                 (i & 2) ? HERMES_SET_IF_ABSENT : 0};
    }
    batch b = {n, 0};
    int status, flag = -1;
    uint64_t t0 = clock_ms(CLOCK_MONOTONIC);
    switch (opts & 7) {
    case 0:
        status = be->get(st, keys, n, on_value, &b);
        break;
    case 1:
        status = be->set(st, items, n, on_value, &b);
        break;
    case 2:
        status = be->del(st, keys, n);
        break;
    case 3:
        status = be->lock(st, KEY("cache:lock:f:x"), KEY("token"), 1000, &flag);
        break;
    case 4:
        status = be->unlock(st, KEY("cache:lock:f:x"), KEY("token"), &flag);
        break;
    case 5:
        status = be->flush(st, (opts & 64) ? KEY("") : KEY("cache:"));
        break;
    case 6:
        status = be->scan ? be->scan(st, KEY("cache:"), on_scan, &b)
                          : HERMES_BE_UNSUPPORTED;
        break;
    default:
        status = be->stats ? be->stats(st, on_stat, &b) : HERMES_BE_UNSUPPORTED;
        break;
    }
    uint64_t took = clock_ms(CLOCK_MONOTONIC) - t0;
    FUZZ_CHECK(status >= HERMES_BE_OK && status <= HERMES_BE_UNSUPPORTED);
    if (status == HERMES_BE_OK && ((opts & 7) == 3 || (opts & 7) == 4))
        FUZZ_CHECK(flag == 0 || flag == 1);
    FUZZ_CHECK(took < 5000);
    be->close(st);
    return 0;
}
