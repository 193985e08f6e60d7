/*
 * Starts and stops private redis-server processes for tests (see
 * redis_server.h).  The server's log goes to a file in its directory, never
 * to our stdout, which belongs to the test harness.
 */
#include "redis_server.h"
#include "server_proc.h"

#include <hiredis/hiredis.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define START_TIMEOUT_MS 5000

static const char install_hint[] =
    "install it (Debian/Ubuntu: apt-get install redis-server) or point "
    "HERMES_REDIS_SERVER at the binary";

/* Does the server answer at all?  An error reply (NOAUTH) counts. */
static int answers_ping(const void *arg)
{
    const redis_server *s = arg;
    struct timeval tv = {0, 200000};
    redisContext *c;
    redisReply *r;
    int ok = 0;

    c = redisConnectWithTimeout("127.0.0.1", s->port, tv);
    if (c && !c->err && redisSetTimeout(c, tv) == REDIS_OK) {
        r = redisCommand(c, "PING");
        ok = r != NULL;
        if (r)
            freeReplyObject(r);
    }
    if (c)
        redisFree(c);
    return ok;
}

static void log_path(const redis_server *s, char *buf, size_t size)
{
    snprintf(buf, size, "%s/redis.log", s->dir);
}

/* One attempt on s->port.  Returns 0 when up, 1 when the port was taken
 * (worth another port), -1 on any other failure. */
static int start_once(redis_server *s, const char *bin)
{
    char port[16], logfile[128];
    const char *argv[32];
    int argc = 0;

    snprintf(port, sizeof port, "%d", s->port);
    log_path(s, logfile, sizeof logfile);
    argv[argc++] = bin;
    argv[argc++] = "--port";
    argv[argc++] = port;
    argv[argc++] = "--bind";
    argv[argc++] = "127.0.0.1";
    argv[argc++] = "--save";
    argv[argc++] = "";
    argv[argc++] = "--appendonly";
    argv[argc++] = "no";
    argv[argc++] = "--daemonize";
    argv[argc++] = "no";
    argv[argc++] = "--unixsocket";
    argv[argc++] = s->socket_path;
    argv[argc++] = "--unixsocketperm";
    argv[argc++] = "700";
    argv[argc++] = "--dir";
    argv[argc++] = s->dir;
    argv[argc++] = "--logfile";
    argv[argc++] = logfile;
    if (s->requirepass) {
        argv[argc++] = "--requirepass";
        argv[argc++] = s->requirepass;
    }
    for (int i = 0; i < 8 && s->extra_args[i]; i++)
        argv[argc++] = s->extra_args[i];
    argv[argc] = NULL;

    sp_launch l = {.who = "redis_server",
                   .argv = argv,
                   .log_path = logfile,
                   .port_taken = "Address already in use",
                   .install_hint = install_hint,
                   .port = s->port,
                   .answers = answers_ping,
                   .arg = s,
                   .timeout_ms = START_TIMEOUT_MS};
    return sp_spawn(&l, &s->pid);
}

static int start(redis_server *s, int keep_port)
{
    const char *bin = sp_binary("HERMES_REDIS_SERVER", "redis-server");
    int attempt, rc;

    if (!sp_binary_exists(bin)) {
        fprintf(stderr,
                "redis_server: ERROR: no redis-server binary \"%s\" found; "
                "the redis tests need one: %s\n",
                bin, install_hint);
        return -1;
    }
    if (!s->dir[0]) {
        strcpy(s->dir, "/tmp/hermes-redis-XXXXXX");
        if (!mkdtemp(s->dir)) {
            fprintf(stderr, "redis_server: mkdtemp: %s\n", strerror(errno));
            s->dir[0] = '\0';
            return -1;
        }
        snprintf(s->socket_path, sizeof s->socket_path, "%s/redis.sock",
                 s->dir);
    }
    for (attempt = 0; attempt < 5; attempt++) {
        if (!keep_port || s->port == 0)
            s->port = sp_free_port();
        if (s->port <= 0) {
            fprintf(stderr, "redis_server: no free port: %s\n",
                    strerror(errno));
            return -1;
        }
        rc = start_once(s, bin);
        if (rc == 0)
            return 0;
        if (rc < 0 || keep_port)
            break;
    }
    fprintf(stderr, "redis_server: ERROR: could not start %s (%s)\n", bin,
            install_hint);
    return -1;
}

int redis_server_start(redis_server *s)
{
    return start(s, 0);
}

int redis_server_start_port(redis_server *s, int port)
{
    s->port = port;
    return start(s, 1);
}

void redis_server_stop(redis_server *s)
{
    char path[160];

    sp_terminate(&s->pid, SIGTERM);
    if (s->dir[0]) {
        log_path(s, path, sizeof path);
        unlink(path);
        unlink(s->socket_path);
        snprintf(path, sizeof path, "%s/dump.rdb", s->dir);
        unlink(path);
        snprintf(path, sizeof path, "%s/nodes.conf", s->dir);
        unlink(path);
        rmdir(s->dir);
        s->dir[0] = '\0';
        s->socket_path[0] = '\0';
    }
}

void redis_server_kill(redis_server *s)
{
    sp_terminate(&s->pid, SIGKILL);
}

int redis_server_restart(redis_server *s)
{
    sp_terminate(&s->pid, SIGTERM);
    return start(s, 1);
}

long long redis_info_calls(const char *info, const char *cmd)
{
    char needle[64];
    const char *p;

    snprintf(needle, sizeof needle, "cmdstat_%s:calls=", cmd);
    p = strstr(info, needle);
    return p ? atoll(p + strlen(needle)) : 0;
}

long long redis_info_work_calls(const char *info)
{
    long long total = 0;

    for (const char *p = strstr(info, "cmdstat_"); p;
         p = strstr(p + 1, "cmdstat_")) {
        if (strncmp(p, "cmdstat_info:", 13) == 0 ||
            strncmp(p, "cmdstat_config", 14) == 0 ||
            strncmp(p, "cmdstat_replconf:", 17) == 0)
            continue;
        const char *c = strstr(p, "calls=");
        if (c)
            total += atoll(c + 6);
    }
    return total;
}
