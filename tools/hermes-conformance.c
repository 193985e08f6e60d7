/*
 * hermes-conformance - checks that a backend plugin keeps the promises of
 * <hermes/backend.h>, purely through the ABI: it loads the plugin the way
 * the core does (by name or path), gives it a host, and runs a table of
 * small checks, printing "ok   NAME", "FAIL NAME: REASON" or (rarely)
 * "skip NAME: REASON" for each and a final "N passed, N failed" line.  The
 * exit status is 0 only when nothing failed, so vendors can run it in CI.
 *
 * Every key it writes is under a prefix unique to the run
 * ("hconf:<pid>:<random>:"), flushed at the end, so it can run against a
 * server holding other data.
 */
#include "conformance/conformance.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "loader.h"

/* A check still running after this long is reported as hung; generous
 * enough for server_gone's bounded calls (10 s each). */
#define CHECK_DEADLINE_S 180

enum {
    NEEDS_STATE = 0x1, /* runs only after open succeeded */
    IS_OPEN = 0x2,     /* when it fails, nothing else can run */
    NEEDS_KILL = 0x4,  /* runs only with --kill-cmd */
    NEEDS_RESTART = 0x8
};

static const struct check {
    const char *name;
    conf_check_fn fn;
    unsigned flags;
} checks[] = {
    {"descriptor", check_descriptor, 0},
    {"open_rejects_unknown_key", check_open_rejects_unknown_key, 0},
    {"open", check_open, IS_OPEN},
    {"get_missing", check_get_missing, NEEDS_STATE},
    {"set_get_binary", check_set_get_binary, NEEDS_STATE},
    {"empty_value", check_empty_value, NEEDS_STATE},
    {"long_key", check_long_key, NEEDS_STATE},
    {"value_4mib", check_value_4mib, NEEDS_STATE},
    {"get_batch", check_get_batch, NEEDS_STATE},
    {"overwrite", check_overwrite, NEEDS_STATE},
    {"set_if_absent", check_set_if_absent, NEEDS_STATE},
    {"set_if_absent_race", check_set_if_absent_race, NEEDS_STATE},
    {"ttl_expiry", check_ttl_expiry, NEEDS_STATE},
    {"delete", check_delete, NEEDS_STATE},
    {"lock_exclusive", check_lock_exclusive, NEEDS_STATE},
    {"lock_race", check_lock_race, NEEDS_STATE},
    {"unlock_wrong_token", check_unlock_wrong_token, NEEDS_STATE},
    {"unlock_owner", check_unlock_owner, NEEDS_STATE},
    {"lock_ttl_takeover", check_lock_ttl_takeover, NEEDS_STATE},
    {"flush_prefix", check_flush_prefix, NEEDS_STATE},
    {"scan", check_scan, NEEDS_STATE},
    {"stats", check_stats, NEEDS_STATE},
    {"concurrency", check_concurrency, NEEDS_STATE},
    {"server_gone", check_server_gone, NEEDS_STATE | NEEDS_KILL},
    {"server_back", check_server_back, NEEDS_STATE | NEEDS_RESTART},
};

/* --------------------------------------------------------- the report */

/*
 * The progress of the run, shared with the watchdog thread and the crash
 * handler so that even a hung or crashing plugin leaves a complete report
 * naming the check it was in.  Written by the main thread only.
 */
static struct {
    pthread_mutex_t mu;           /* serializes report lines */
    const char *volatile current; /* the check running, or NULL */
    volatile time_t started;
    volatile int passed, failed;
} run = {PTHREAD_MUTEX_INITIALIZER, NULL, 0, 0, 0};

static void report(const char *verdict, const char *name, const char *why)
{
    pthread_mutex_lock(&run.mu);
    if (why)
        printf("%s %s: %s\n", verdict, name, why);
    else
        printf("%s %s\n", verdict, name);
    fflush(stdout);
    pthread_mutex_unlock(&run.mu);
}

static void summary(int passed, int failed)
{
    printf("%d passed, %d failed\n", passed, failed);
    fflush(stdout);
}

/* Async-signal-safe decimal formatting for the crash handler. */
static size_t put_uint(char *p, unsigned v)
{
    char tmp[16];
    size_t n = 0, i = 0;

    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n)
        p[i++] = tmp[--n];
    return i;
}

static size_t put_str(char *p, const char *s)
{
    size_t n = strlen(s);

    memcpy(p, s, n);
    return n;
}

static const int fatal_signals[] = {SIGSEGV, SIGBUS,  SIGFPE,
                                    SIGILL,  SIGABRT, SIGPIPE};
static struct sigaction
    old_action[sizeof fatal_signals / sizeof fatal_signals[0]];

/*
 * A plugin that crashes the process still gets a FAIL line naming the
 * check and the summary, then the signal takes its normal course (the
 * previous handler - a sanitizer's, say - or the default action).
 * SIGPIPE counts: a plugin writing to a dead server's socket without
 * MSG_NOSIGNAL kills its application.
 */
static void on_fatal_signal(int sig, siginfo_t *si, void *uc)
{
    char buf[512];
    size_t n = 0;
    const char *cur = run.current ? run.current : "(between checks)";

    (void)uc;
    n += put_str(buf + n, "FAIL ");
    n += put_str(buf + n, strlen(cur) < 100 ? cur : "?");
    n += put_str(buf + n, ": the process was killed by signal ");
    n += put_uint(buf + n, (unsigned)sig);
    n += put_str(buf + n, sig == SIGSEGV   ? " (SIGSEGV)"
                          : sig == SIGABRT ? " (SIGABRT)"
                          : sig == SIGPIPE ? " (SIGPIPE: writing to a closed "
                                             "socket)"
                          : sig == SIGBUS  ? " (SIGBUS)"
                          : sig == SIGFPE  ? " (SIGFPE)"
                                           : " (SIGILL)");
    buf[n++] = '\n';
    n += put_uint(buf + n, (unsigned)run.passed);
    n += put_str(buf + n, " passed, ");
    n += put_uint(buf + n, (unsigned)run.failed + 1);
    n += put_str(buf + n, " failed\n");
    if (write(STDOUT_FILENO, buf, n) < 0) {
        /* nothing more can be done */
    }
    for (size_t i = 0; i < sizeof fatal_signals / sizeof fatal_signals[0]; i++)
        if (fatal_signals[i] == sig)
            sigaction(sig, &old_action[i], NULL);
    /* A fault raised by the CPU recurs when the handler returns, now
     * reaching the previous handler with its real context; others are
     * raised again. */
    if (sig == SIGABRT || sig == SIGPIPE || si->si_code <= 0)
        raise(sig);
}

static void install_crash_handler(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_fatal_signal;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < sizeof fatal_signals / sizeof fatal_signals[0]; i++)
        sigaction(fatal_signals[i], &sa, &old_action[i]);
}

/* Reports a check that never finishes and ends the run: the plugin is
 * stuck in a call, so nothing else can safely run or close it. */
static void *watchdog(void *arg)
{
    (void)arg;
    for (;;) {
        sleep(1);
        pthread_mutex_lock(&run.mu);
        const char *cur = run.current;

        if (cur && time(NULL) - run.started > CHECK_DEADLINE_S) {
            printf("FAIL %s: did not finish within %d s (a call into the "
                   "plugin hangs?)\n",
                   cur, CHECK_DEADLINE_S);
            summary(run.passed, run.failed + 1);
            _exit(1);
        }
        pthread_mutex_unlock(&run.mu);
    }
    return NULL;
}

/* ------------------------------------------------------------ the host */

static void host_log(void *ctx, int level, const char *msg)
{
    static const char *const names[] = {"error", "warn", "info", "debug"};
    conf_ctx *c = ctx;

    if (level > (c->verbose ? HERMES_LOG_DEBUG : HERMES_LOG_WARN))
        return;
    fprintf(stderr, "hermes-conformance: %s: %s: %s\n", c->be->name,
            level >= 0 && level <= 3 ? names[level] : "?",
            msg ? msg : "(NULL message)");
}

static uint64_t host_now_ms(void *ctx)
{
    struct timespec ts;

    (void)ctx;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint64_t host_monotonic_ns(void *ctx)
{
    struct timespec ts;

    (void)ctx;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int host_random(void *ctx, void *buf, size_t len)
{
    unsigned char *p = buf;

    (void)ctx;
    while (len) {
        ssize_t n = getrandom(p, len, 0);

        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* ---------------------------------------------------------------- main */

static void usage(FILE *f)
{
    fprintf(f, "usage: hermes-conformance [-v] [-c CONFIG] [--kill-cmd CMD "
               "[--restart-cmd CMD]] PLUGIN\n"
               "\n"
               "Checks a Hermes backend plugin against the backend ABI.\n"
               "PLUGIN is a name (\"dict\", \"redis\": searched like "
               "`backend = NAME`)\n"
               "or the path of a .so or .la file.\n"
               "\n"
               "  -c, --config FILE   INI file; the section named after the "
               "plugin is\n"
               "                      passed to open() ([hermes] plugin_path "
               "is used too)\n"
               "  -v, --verbose       show details and the plugin's debug "
               "log\n"
               "      --kill-cmd CMD  shell command that stops the server; "
               "adds the check\n"
               "                      that every operation then fails "
               "cleanly\n"
               "      --restart-cmd CMD  shell command that starts it again; "
               "adds the\n"
               "                      check that operations recover within "
               "5 s\n"
               "  -h, --help          this text\n"
               "\n"
               "Prints one line per check and \"N passed, N failed\"; exits 0 "
               "only when\n"
               "nothing failed, 1 when a check failed, 2 on a usage or config "
               "error.\n");
}

/* "memory.so" in the current directory means that file, not a plugin
 * named "memory.so": the loader treats only specs with a '/' as paths. */
static char *normalize_spec(const char *spec)
{
    size_t n = strlen(spec);
    char *s = conf_xmalloc(n + 3);

    if (!strchr(spec, '/') && n > 3 &&
        (strcmp(spec + n - 3, ".so") == 0 ||
         strcmp(spec + n - 3, ".la") == 0) &&
        access(spec, F_OK) == 0)
        snprintf(s, n + 3, "./%s", spec);
    else
        memcpy(s, spec, n + 1);
    return s;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'},
        {"verbose", no_argument, NULL, 'v'},
        {"kill-cmd", required_argument, NULL, 'K'},
        {"restart-cmd", required_argument, NULL, 'R'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    /* Static: a call abandoned by server_gone may still use it at exit. */
    static conf_ctx ctx;
    conf_ctx *c = &ctx;
    const char *config_path = NULL;
    hm_config cfg;
    int have_cfg = 0, opt;
    char err[1024];

    while ((opt = getopt_long(argc, argv, "c:vh", longopts, NULL)) != -1) {
        switch (opt) {
        case 'c':
            config_path = optarg;
            break;
        case 'v':
            c->verbose = 1;
            break;
        case 'K':
            c->kill_cmd = optarg;
            break;
        case 'R':
            c->restart_cmd = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (c->restart_cmd && !c->kill_cmd) {
        fprintf(stderr, "hermes-conformance: --restart-cmd needs "
                        "--kill-cmd\n");
        return 2;
    }
    if (config_path) {
        if (hm_config_load(config_path, &cfg, err, sizeof err) != HERMES_OK) {
            fprintf(stderr, "hermes-conformance: %s\n", err);
            return 2;
        }
        have_cfg = 1;
    }
    /* Without PLUGIN, the config's `backend =` names it. */
    if (optind + 1 != argc && !(optind == argc && have_cfg && cfg.backend)) {
        usage(stderr);
        if (have_cfg)
            hm_config_free(&cfg);
        return 2;
    }
    char *spec = normalize_spec(optind < argc ? argv[optind] : cfg.backend);

    setvbuf(stdout, NULL, _IOLBF, 0);
    install_crash_handler();

    hm_plugin plugin;

    memset(&plugin, 0, sizeof plugin);
    if (hm_plugin_load(spec, have_cfg ? cfg.plugin_path : NULL, &plugin, err,
                       sizeof err) != HERMES_OK) {
        report("FAIL", "load", err);
        summary(0, 1);
        free(spec);
        if (have_cfg)
            hm_config_free(&cfg);
        return 1;
    }
    c->be = plugin.desc;
    c->spec = spec;
    c->path = plugin.path;
    c->serialize = !(c->be->caps & HERMES_CAP_THREADSAFE);
    pthread_mutex_init(&c->serial, NULL);
    pthread_mutex_init(&c->reason_mu, NULL);
    c->host.struct_size = sizeof c->host;
    c->host.ctx = c;
    c->host.log = host_log;
    c->host.now_ms = host_now_ms;
    c->host.monotonic_ns = host_monotonic_ns;
    c->host.random = host_random;
    c->host.config_source = have_cfg ? cfg.source : "<defaults>";
    if (have_cfg) {
        const hm_section *sec = hm_config_section(&cfg, c->be->name);

        if (sec) {
            c->kv = sec->kv;
            c->nkv = sec->n;
        }
    }
    uint32_t rnd = 0;

    host_random(NULL, &rnd, sizeof rnd);
    snprintf(c->prefix, sizeof c->prefix, "hconf:%ld:%08x:", (long)getpid(),
             rnd);
    c->prefix_len = strlen(c->prefix);
    printf("# %s %s from %s; keys under \"%s\"%s\n", c->be->name,
           c->be->version ? c->be->version : "?", plugin.path, c->prefix,
           c->serialize ? "; calls serialized (not thread-safe)" : "");

    pthread_t wd;

    pthread_create(&wd, NULL, watchdog, NULL);
    pthread_detach(wd);

    int opened = 0, stop = 0;

    for (size_t i = 0; i < sizeof checks / sizeof checks[0] && !stop; i++) {
        const struct check *ck = &checks[i];

        if ((ck->flags & NEEDS_KILL) && !c->kill_cmd)
            continue;
        if ((ck->flags & NEEDS_RESTART) && !c->restart_cmd)
            continue;
        if ((ck->flags & NEEDS_STATE) && !opened)
            continue;
        c->have_reason = 0;
        c->reason[0] = 0;
        uint64_t t0 = conf_now_ms();

        pthread_mutex_lock(&run.mu);
        run.current = ck->name;
        run.started = time(NULL);
        pthread_mutex_unlock(&run.mu);
        int rc = ck->fn(c);

        /* A check that fails must say why; one that records a reason but
         * returns PASS has found a failure on another thread. */
        if (rc == CONF_PASS && c->have_reason)
            rc = CONF_FAIL;
        pthread_mutex_lock(&run.mu);
        run.current = NULL;
        if (rc == CONF_PASS)
            run.passed++;
        else if (rc == CONF_FAIL)
            run.failed++;
        pthread_mutex_unlock(&run.mu);
        if (rc == CONF_PASS)
            report("ok  ", ck->name, NULL);
        else
            report(rc == CONF_FAIL ? "FAIL" : "skip", ck->name,
                   c->have_reason ? c->reason : "(no reason given)");
        conf_note(c, "%s took %llu ms", ck->name,
                  (unsigned long long)(conf_now_ms() - t0));
        if (ck->flags & IS_OPEN) {
            opened = rc == CONF_PASS;
            stop = !opened;
        }
        if (c->hung)
            stop = 1;
    }

    /* Leave nothing behind, unless the server was left down on purpose or
     * a call is still in flight (close() then must not run). */
    if (opened && c->hung) {
        fprintf(stderr, "hermes-conformance: a call into the plugin never "
                        "returned; not closing it\n");
    } else if (opened) {
        if (!c->kill_cmd || c->restart_cmd) {
            int st = conf_flush(c, conf_bytes(c->prefix, c->prefix_len));

            if (st != HERMES_BE_OK)
                fprintf(stderr,
                        "hermes-conformance: cleanup: flush of "
                        "\"%s\" returned %s\n",
                        c->prefix, conf_status(st));
        }
        c->be->close(c->state);
    }
    summary(run.passed, run.failed);
    int failed = run.failed;

    /* With a call still in flight, the plugin, its host and config must
     * stay as they are until the process exits. */
    if (!c->hung) {
        hm_plugin_unload(&plugin);
        pthread_mutex_destroy(&c->serial);
        pthread_mutex_destroy(&c->reason_mu);
        free(spec);
        if (have_cfg)
            hm_config_free(&cfg);
    }
    fflush(stdout);
    return failed ? 1 : 0;
}
