/*
 * The server's own reason reaches the caller: a real redis-server that
 * refuses writes (maxmemory 1 with noeviction: "OOM command not allowed")
 * or wants a password ("NOAUTH", "WRONGPASS"), and hermes_errmsg() shows
 * its words, passed by the redis plugin through host->error_detail.
 */
#include <hiredis/hiredis.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <hermes/hermes.h>

#include "redis_server.h"

static hermes *open_redis(const redis_server *s, const char *redis_extra)
{
    char text[1024];
    hermes *c;
    snprintf(text, sizeof text,
             "[hermes]\nbackend = redis\nplugin_path = %s/plugins/redis\n"
             "prefix = errs\non_backend_error = fail\nlog_level = error\n"
             "[redis]\nport = %d\nconnect_timeout_ms = 500\n"
             "command_timeout_ms = 1000\n%s",
             getenv("HERMES_TEST_BUILDDIR"), s->port,
             redis_extra ? redis_extra : "");
    hermes_rc rc = hermes_open_string(&c, text, "test");
    if (rc != HERMES_OK)
        fail_msg("open: %s", hermes_errmsg(c));
    return c;
}

/* Runs one command on the server, outside the library. */
static void server_command(const redis_server *s, const char *password,
                           const char *cmd)
{
    redisContext *r = redisConnect("127.0.0.1", s->port);
    assert_non_null(r);
    assert_int_equal(r->err, 0);
    redisReply *rep;
    if (password) {
        rep = redisCommand(r, "AUTH %s", password);
        assert_non_null(rep);
        freeReplyObject(rep);
    }
    rep = redisCommand(r, cmd);
    assert_non_null(rep);
    if (rep->type == REDIS_REPLY_ERROR)
        fail_msg("%s: %s", cmd, rep->str);
    freeReplyObject(rep);
    redisFree(r);
}

static int compute_value(void *arg, hermes_result *res)
{
    (void)arg;
    return hermes_result_set(res, "value", 5) != HERMES_OK;
}

#define ASSERT_SAYS(msg, needle)                                               \
    do {                                                                       \
        if (!strstr((msg), (needle)))                                          \
            fail_msg("message '%s' does not say '%s'", (msg), (needle));       \
    } while (0)

static void out_of_memory_is_the_servers_words(void **state)
{
    (void)state;
    redis_server s = {0};
    assert_int_equal(redis_server_start(&s), 0);
    hermes *h = open_redis(&s, NULL);
    hermes_fn *fn;
    assert_int_equal(hermes_fn_register(h, "f", NULL, &fn), HERMES_OK);
    assert_int_equal(hermes_set(h, "k", "v", 1, NULL, 0), HERMES_OK);
    assert_string_equal(hermes_errmsg(h), "");

    server_command(&s, NULL, "CONFIG SET maxmemory-policy noeviction");
    server_command(&s, NULL, "CONFIG SET maxmemory 1");

    assert_int_equal(hermes_set(h, "k2", "v", 1, NULL, 0), HERMES_EBACKEND);
    ASSERT_SAYS(hermes_errmsg(h), "set k2: ");
    ASSERT_SAYS(hermes_errmsg(h), "OOM command not allowed");

    /* A cached call: the read works, taking the lock is refused. */
    void *v;
    size_t n;
    assert_int_equal(hermes_call(fn, "a", 1, compute_value, NULL, &v, &n),
                     HERMES_EBACKEND);
    ASSERT_SAYS(hermes_errmsg(h), "f: backend redis: ");
    ASSERT_SAYS(hermes_errmsg(h), "OOM command not allowed");

    /* Reads still work, and say nothing. */
    assert_int_equal(hermes_get(h, "k", NULL, &v, &n), HERMES_OK);
    hermes_free(v);
    assert_string_equal(hermes_errmsg(h), "");

    server_command(&s, NULL, "CONFIG SET maxmemory 0");
    assert_int_equal(hermes_set(h, "k2", "v", 1, NULL, 0), HERMES_OK);
    assert_string_equal(hermes_errmsg(h), "");
    hermes_close(h);
    redis_server_stop(&s);
}

static void authentication_is_the_servers_words(void **state)
{
    (void)state;
    redis_server s = {.requirepass = "sekrit"};
    assert_int_equal(redis_server_start(&s), 0);
    void *v;
    size_t n;

    hermes *h = open_redis(&s, NULL); /* no password */
    assert_int_equal(hermes_get(h, "k", NULL, &v, &n), HERMES_EBACKEND);
    ASSERT_SAYS(hermes_errmsg(h), "get k: ");
    ASSERT_SAYS(hermes_errmsg(h), "NOAUTH");
    hermes_close(h);

    h = open_redis(&s, "password = wrong\n");
    assert_int_equal(hermes_get(h, "k", NULL, &v, &n), HERMES_EBACKEND);
    ASSERT_SAYS(hermes_errmsg(h), "AUTH refused");
    /* Old servers say "ERR invalid password", redis 6 and later WRONGPASS. */
    if (!strstr(hermes_errmsg(h), "WRONGPASS") &&
        !strstr(hermes_errmsg(h), "invalid password"))
        fail_msg("message '%s' does not give the server's reason",
                 hermes_errmsg(h));
    hermes_close(h);

    h = open_redis(&s, "password = sekrit\n");
    assert_int_equal(hermes_set(h, "k", "v", 1, NULL, 0), HERMES_OK);
    assert_string_equal(hermes_errmsg(h), "");
    hermes_close(h);
    redis_server_stop(&s);
}

/* A server that is gone: the connect's reason. */
static void a_dead_server_says_why(void **state)
{
    (void)state;
    redis_server s = {0};
    assert_int_equal(redis_server_start(&s), 0);
    hermes *h = open_redis(&s, NULL);
    redis_server_stop(&s);
    void *v;
    size_t n;
    assert_int_equal(hermes_get(h, "k", NULL, &v, &n), HERMES_EBACKEND);
    ASSERT_SAYS(hermes_errmsg(h), "get k: backend unreachable or timed out: ");
    ASSERT_SAYS(hermes_errmsg(h), "connect failed: ");
    /* The next call fails fast during the backoff, and says so. */
    assert_int_equal(hermes_get(h, "k", NULL, &v, &n), HERMES_EBACKEND);
    ASSERT_SAYS(hermes_errmsg(h), "backing off");
    hermes_close(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(out_of_memory_is_the_servers_words),
        cmocka_unit_test(authentication_is_the_servers_words),
        cmocka_unit_test(a_dead_server_says_why),
    };
    return cmocka_run_group_tests_name("redis_errors", tests, NULL, NULL);
}
