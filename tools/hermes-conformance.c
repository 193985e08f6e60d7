/*
 * hermes-conformance - checks that a backend plugin keeps the promises of
 * <hermes/backend.h>, purely through the ABI: it loads the plugin the way
 * the core does (by name or path), gives it a host, and runs a table of
 * small checks, printing "ok   NAME", "FAIL NAME: REASON" or (rarely)
 * "skip NAME: REASON" for each and a final "N passed, N failed" line
 * (", N skipped" added when some were), which counts every check of the
 * run.  Each check runs in its own process with its own deadline (see
 * run_group), so one that hangs or crashes is one failure and the others
 * still run.  The exit status is 0 only when nothing failed, so vendors
 * can run it in CI.
 *
 * Every key it writes is under a prefix unique to the run
 * ("hconf:<pid>:<random>:"), flushed at the end (or scanned and deleted,
 * when the store cannot delete by prefix), so it can run against a server
 * holding other data.
 */
#include "conformance/conformance.h"

#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "loader.h"

/* How long one check may run before it is declared hung and its process
 * killed; server_gone makes up to eight calls bounded at 10 s each.
 * --timeout overrides both. */
#define CHECK_DEADLINE_S 60
#define SERVER_DEADLINE_S 120

enum {
    NEEDS_STATE = 0x1, /* runs on a state open() created in its process */
    IS_OPEN = 0x2,     /* when it fails, the NEEDS_STATE checks cannot run */
    NEEDS_KILL = 0x4,  /* runs only with --kill-cmd */
    NEEDS_RESTART = 0x8,
    WITH_NEXT = 0x10, /* shares its process and state with the next check */
};

static const struct check {
    const char *name;
    conf_check_fn fn;
    unsigned flags;
    unsigned deadline_s; /* 0: CHECK_DEADLINE_S */
} checks[] = {
    {"descriptor", check_descriptor, 0, 0},
    {"open_rejects_unknown_key", check_open_rejects_unknown_key, 0, 0},
    {"open", check_open, IS_OPEN, 0},
    {"two_states", check_two_states, NEEDS_STATE, 0},
    {"get_missing", check_get_missing, NEEDS_STATE, 0},
    {"set_get_binary", check_set_get_binary, NEEDS_STATE, 0},
    {"empty_value", check_empty_value, NEEDS_STATE, 0},
    {"long_key", check_long_key, NEEDS_STATE, 0},
    {"value_limit", check_value_limit, NEEDS_STATE, 0},
    {"get_batch", check_get_batch, NEEDS_STATE, 0},
    {"batch_duplicates", check_batch_duplicates, NEEDS_STATE, 0},
    {"overwrite", check_overwrite, NEEDS_STATE, 0},
    {"set_if_absent", check_set_if_absent, NEEDS_STATE, 0},
    {"set_if_absent_race", check_set_if_absent_race, NEEDS_STATE, 0},
    {"ttl_expiry", check_ttl_expiry, NEEDS_STATE, 0},
    {"delete", check_delete, NEEDS_STATE, 0},
    {"lock_exclusive", check_lock_exclusive, NEEDS_STATE, 0},
    {"lock_race", check_lock_race, NEEDS_STATE, 0},
    {"unlock_wrong_token", check_unlock_wrong_token, NEEDS_STATE, 0},
    {"unlock_owner", check_unlock_owner, NEEDS_STATE, 0},
    {"lock_ttl_takeover", check_lock_ttl_takeover, NEEDS_STATE, 0},
    {"lock_ttl_zero", check_lock_ttl_zero, NEEDS_STATE, 0},
    {"lock_get", check_lock_get, NEEDS_STATE, 0},
    {"set_unlock", check_set_unlock, NEEDS_STATE, 0},
    {"wait_unlock", check_wait_unlock, NEEDS_STATE, 0},
    {"flush_prefix", check_flush_prefix, NEEDS_STATE, 0},
    {"scan", check_scan, NEEDS_STATE, 0},
    {"stats", check_stats, NEEDS_STATE, 0},
    {"concurrency", check_concurrency, NEEDS_STATE, 0},
    /* server_back checks that the same state recovers, so with
     * --restart-cmd the two share a process. */
    {"server_gone", check_server_gone, NEEDS_STATE | NEEDS_KILL | WITH_NEXT,
     SERVER_DEADLINE_S},
    {"server_back", check_server_back, NEEDS_STATE | NEEDS_RESTART,
     SERVER_DEADLINE_S},
};

#define NCHECKS (sizeof checks / sizeof checks[0])

/* --------------------------------------------------------- the report */

static struct {
    int passed, failed, skipped;
} tally;

static void report(const char *verdict, const char *name, const char *why)
{
    if (why)
        printf("%s %s: %s\n", verdict, name, why);
    else
        printf("%s %s\n", verdict, name);
    fflush(stdout);
}

static void summary(void)
{
    if (tally.skipped)
        printf("%d passed, %d failed, %d skipped\n", tally.passed, tally.failed,
               tally.skipped);
    else
        printf("%d passed, %d failed\n", tally.passed, tally.failed);
    fflush(stdout);
}

static void count(int rc, const char *name, const char *why)
{
    if (rc == CONF_PASS) {
        tally.passed++;
        report("ok  ", name, NULL);
    } else if (rc == CONF_FAIL) {
        tally.failed++;
        report("FAIL", name, why && *why ? why : "(no reason given)");
    } else {
        tally.skipped++;
        report("skip", name, why && *why ? why : "(no reason given)");
    }
}

static const char *signal_name(int sig)
{
    switch (sig) {
    case SIGSEGV:
        return "SIGSEGV";
    case SIGABRT:
        return "SIGABRT";
    case SIGPIPE:
        return "SIGPIPE: writing to a closed socket";
    case SIGBUS:
        return "SIGBUS";
    case SIGFPE:
        return "SIGFPE";
    case SIGILL:
        return "SIGILL";
    case SIGKILL:
        return "SIGKILL";
    case SIGTERM:
        return "SIGTERM";
    default:
        return "?";
    }
}

/* ----------------------------------------------- one process per check */

/*
 * Every check runs in a child process of its own (a group of WITH_NEXT
 * checks in one), which opens its own plugin state, so that a check that
 * hangs, crashes or exits is one failed check and the others still run on
 * a sound state.  The parent stays single-threaded and never calls into
 * the plugin: it waits for each verdict with a deadline, kills a child
 * that misses it, and attributes what the plugin wrote to its standard
 * output (redirected to a file in the child) to the check that was
 * running: a plugin must never print.
 */
struct verdict {
    int rc;
    char reason[512];
};

static int write_all(int fd, const void *p, size_t n)
{
    const char *s = p;

    while (n) {
        ssize_t w = write(fd, s, n);

        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        s += w;
        n -= (size_t)w;
    }
    return 0;
}

static void child(conf_ctx *c, size_t first, size_t last, int vfd, int capfd)
{
    struct rlimit nocore = {0, 0};

    /* A crash is reported as a failed check; no core file is needed. */
    setrlimit(RLIMIT_CORE, &nocore);
    c->out_fd = dup(STDOUT_FILENO);
    if (c->out_fd < 0 || dup2(capfd, STDOUT_FILENO) < 0)
        _exit(3);
    close(capfd);
    for (size_t i = first; i <= last; i++) {
        const struct check *ck = &checks[i];
        struct verdict v;
        int rc = CONF_PASS;

        c->have_reason = 0;
        c->reason[0] = 0;
        if ((ck->flags & NEEDS_STATE) && !c->state)
            rc = conf_open(c);
        if (rc == CONF_PASS)
            rc = ck->fn(c);
        /* A check that fails must say why; one that records a reason but
         * returns PASS has found a failure on another thread. */
        if (rc == CONF_PASS && c->have_reason)
            rc = CONF_FAIL;
        /* close() belongs to the last check, so that what it prints or a
         * hang in it is seen; never with a call still in flight. */
        if (i == last && c->state && !c->hung) {
            c->be->close(c->state);
            c->state = NULL;
        }
        fflush(stdout);
        memset(&v, 0, sizeof v);
        v.rc = rc;
        snprintf(v.reason, sizeof v.reason, "%s",
                 c->have_reason ? c->reason : "");
        if (write_all(vfd, &v, sizeof v) < 0)
            _exit(3);
        if (c->hung) {
            /* The state is unusable: the rest of the group cannot run. */
            for (size_t j = i + 1; j <= last; j++) {
                v.rc = CONF_SKIP;
                snprintf(v.reason, sizeof v.reason,
                         "not run: a call of %s never returned", ck->name);
                if (write_all(vfd, &v, sizeof v) < 0)
                    _exit(3);
            }
            break;
        }
    }
    /* With a call still in flight nothing may be torn down; otherwise a
     * normal exit lets a leak checker look at what the plugin left. */
    if (c->hung)
        _exit(0);
    exit(0);
}

/* "WHO was killed by signal N (NAME)" or "WHO exited with status N". */
static void describe_exit(int status, const char *who, char *buf, size_t cap)
{
    if (WIFSIGNALED(status))
        snprintf(buf, cap, "%s was killed by signal %d (%s)", who,
                 WTERMSIG(status), signal_name(WTERMSIG(status)));
    else
        snprintf(buf, cap,
                 "%s exited with status %d (the plugin called exit()? a "
                 "sanitizer report? see stderr)",
                 who, WIFEXITED(status) ? WEXITSTATUS(status) : -1);
}

/* Reads one verdict until deadline_ms (monotonic): 1 read, 0 EOF,
 * -1 deadline passed. */
static int read_verdict(int fd, struct verdict *v, uint64_t deadline_ms)
{
    size_t got = 0;

    while (got < sizeof *v) {
        uint64_t now = conf_now_ms();

        if (now >= deadline_ms)
            return -1;
        struct pollfd pfd = {fd, POLLIN, 0};
        int n = poll(&pfd, 1, (int)(deadline_ms - now));

        if (n < 0 && errno == EINTR)
            continue;
        if (n == 0)
            return -1;
        ssize_t r = read(fd, (char *)v + got, sizeof *v - got);

        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return 0;
        got += (size_t)r;
    }
    v->reason[sizeof v->reason - 1] = 0;
    return 1;
}

/* What the plugin wrote to stdout since *seen, for the report. */
static int stdout_written(int capfd, off_t *seen, char *why, size_t cap)
{
    struct stat sb;
    unsigned char head[48];

    if (fstat(capfd, &sb) != 0 || sb.st_size <= *seen)
        return 0;
    ssize_t n = pread(capfd, head, sizeof head, *seen);

    snprintf(why, cap,
             "the plugin wrote %lld bytes to standard output (%s); a "
             "plugin never prints, it logs through host->log",
             (long long)(sb.st_size - *seen),
             conf_show(head, n > 0 ? (size_t)n : 0));
    *seen = sb.st_size;
    return 1;
}

/* Runs checks first..last (one group) in a child; counts each. */
static void run_group(conf_ctx *c, size_t first, size_t last,
                      unsigned timeout_s, int *open_ok)
{
    int pfd[2];
    FILE *cap = tmpfile();

    fflush(NULL);
    if (!cap || pipe(pfd) != 0) {
        fprintf(stderr, "hermes-conformance: cannot create a pipe or a "
                        "temporary file\n");
        exit(2);
    }
    pid_t pid = fork();

    if (pid < 0) {
        fprintf(stderr, "hermes-conformance: cannot fork\n");
        exit(2);
    }
    if (pid == 0) {
        close(pfd[0]);
        child(c, first, last, pfd[1], fileno(cap));
    }
    close(pfd[1]);

    int capfd = fileno(cap), status = 0, reaped = 0;
    off_t seen = 0;
    const char *ended = NULL; /* why the rest of the group did not run */
    char endbuf[600];

    for (size_t i = first; i <= last; i++) {
        const struct check *ck = &checks[i];
        unsigned limit = timeout_s        ? timeout_s
                         : ck->deadline_s ? ck->deadline_s
                                          : CHECK_DEADLINE_S;
        struct verdict v;
        char why[1200];
        uint64_t t0 = conf_now_ms();

        if (ended) {
            count(CONF_SKIP, ck->name, ended);
            continue;
        }
        int r = read_verdict(pfd[0], &v, t0 + (uint64_t)limit * 1000u);

        if (r < 0) {
            kill(pid, SIGKILL);
            snprintf(why, sizeof why,
                     "did not finish within %u s (a call into the plugin "
                     "hangs?); its process was killed",
                     limit);
            v.rc = CONF_FAIL;
            snprintf(endbuf, sizeof endbuf,
                     "not run: %s, run in the same "
                     "process before it, hung",
                     ck->name);
            ended = endbuf;
        } else if (r == 0) {
            waitpid(pid, &status, 0);
            reaped = 1;
            describe_exit(status, "the process", why, sizeof why);
            v.rc = CONF_FAIL;
            snprintf(endbuf, sizeof endbuf,
                     "not run: the process ended in "
                     "%s",
                     ck->name);
            ended = endbuf;
        } else {
            snprintf(why, sizeof why, "%s", v.reason);
        }
        char out[400];

        if (stdout_written(capfd, &seen, out, sizeof out)) {
            if (v.rc == CONF_FAIL)
                snprintf(why + strlen(why), sizeof why - strlen(why),
                         "; and %s", out);
            else
                snprintf(why, sizeof why, "%s", out);
            v.rc = CONF_FAIL;
        }
        if (ck->flags & IS_OPEN)
            *open_ok = v.rc == CONF_PASS;
        count(v.rc, ck->name, why);
        conf_note(c, "%s took %llu ms", ck->name,
                  (unsigned long long)(conf_now_ms() - t0));
    }
    if (!reaped) {
        waitpid(pid, &status, 0);
        /* Every verdict arrived, but the exit still tells: a sanitizer's
         * leak report, say, after close(). */
        if (!ended && !(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
            char why[200];

            describe_exit(status, "after the check, its process", why,
                          sizeof why);
            /* Counted as one more failure of the group's last check. */
            tally.failed++;
            report("FAIL", checks[last].name, why);
        }
    }
    close(pfd[0]);
    fclose(cap);
}

/* The keys a scan of the run's prefix found, deleted after the scan (the
 * kit serializes calls into a plugin that is not thread-safe). */
typedef struct found_keys {
    size_t n, cap;
    hermes_bytes *k;
} found_keys;

static int collect_key(void *arg, const void *key, size_t klen,
                       const void *value, size_t vlen, int64_t ttl_ms)
{
    found_keys *f = arg;

    (void)value, (void)vlen, (void)ttl_ms;
    if (f->n == f->cap) {
        size_t cap = f->cap ? 2 * f->cap : 64;
        hermes_bytes *k = realloc(f->k, cap * sizeof *k);

        if (!k)
            return 1; /* delete what was found so far */
        f->k = k;
        f->cap = cap;
    }
    void *copy = conf_xmalloc(klen ? klen : 1);

    memcpy(copy, key, klen);
    f->k[f->n++] = (hermes_bytes){copy, klen};
    return 0;
}

static int delete_scanned(conf_ctx *c, hermes_bytes prefix)
{
    found_keys f = {0, 0, NULL};
    int st = conf_scan(c, prefix, collect_key, &f);

    if (st == HERMES_BE_OK && f.n)
        st = conf_del(c, f.k, f.n);
    for (size_t i = 0; i < f.n; i++)
        free((void *)f.k[i].data);
    free(f.k);
    return st;
}

/*
 * Deletes the run's keys through a fresh state, bounded like a check: a
 * flush of the run's prefix, or, from a store that cannot delete by
 * prefix, a scan and deletes when it can scan, else nothing (the keys stay
 * until they expire or are evicted).
 */
static int remove_run_keys(conf_ctx *c)
{
    hermes_bytes pre = conf_bytes(c->prefix, c->prefix_len);

    if (!(c->be->caps & HERMES_CAP_NO_PREFIX_FLUSH))
        return conf_flush(c, pre);
    if (c->be->caps & HERMES_CAP_SCAN)
        return delete_scanned(c, pre);
    fprintf(stderr,
            "hermes-conformance: cleanup: the backend can neither delete by "
            "prefix nor scan; the run's keys (\"%s\"...) stay until they "
            "expire or are evicted\n",
            c->prefix);
    return HERMES_BE_OK;
}

static void cleanup(conf_ctx *c, unsigned timeout_s)
{
    fflush(NULL);
    pid_t pid = fork();

    if (pid < 0)
        return;
    if (pid == 0) {
        if (conf_open(c) == CONF_PASS) {
            int st = remove_run_keys(c);

            if (st != HERMES_BE_OK)
                fprintf(stderr,
                        "hermes-conformance: cleanup of \"%s\" "
                        "returned %s\n",
                        c->prefix, conf_status(st));
            c->be->close(c->state);
        }
        _exit(0);
    }
    uint64_t deadline =
        conf_now_ms() +
        (uint64_t)(timeout_s ? timeout_s : CHECK_DEADLINE_S) * 1000u;
    int status;

    while (waitpid(pid, &status, WNOHANG) == 0) {
        if (conf_now_ms() >= deadline) {
            fprintf(stderr,
                    "hermes-conformance: cleanup: the removal of "
                    "\"%s\" hangs; killed\n",
                    c->prefix);
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            break;
        }
        conf_sleep_ms(10);
    }
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
    conf_ctx *c = ctx;
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u +
           (uint64_t)atomic_load(&c->wall_skew_ms);
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
    fprintf(f, "usage: hermes-conformance [-v] [-c CONFIG] [--timeout S] "
               "[--ttl-late MS]\n"
               "                         [--kill-cmd CMD [--restart-cmd "
               "CMD]] PLUGIN\n"
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
               "      --timeout S     a check still running after S seconds "
               "fails as hung\n"
               "                      (default 60, 120 for the server "
               "checks)\n"
               "      --ttl-late MS   how long past its TTL a key may "
               "still be read\n"
               "                      (default 1000; a store whose clock "
               "ticks once a\n"
               "                      second, like memcached, needs "
               "2500)\n"
               "  -h, --help          this text\n"
               "\n"
               "Prints one line per check and \"N passed, N failed\" (\", N "
               "skipped\"); exits 0\nonly when"
               " "
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
        {"timeout", required_argument, NULL, 'T'},
        {"ttl-late", required_argument, NULL, 'L'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    static conf_ctx ctx;
    conf_ctx *c = &ctx;
    const char *config_path = NULL;
    hm_config cfg;
    int have_cfg = 0, opt;
    unsigned timeout_s = 0;
    char err[1024], *end;

    c->out_fd = -1;
    c->ttl_late_ms = CONF_TTL_LATE_MS;
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
        case 'T':
            errno = 0;
            unsigned long t = strtoul(optarg, &end, 10);

            if (errno || *end || t < 1 || t > 3600) {
                fprintf(stderr,
                        "hermes-conformance: --timeout: not a "
                        "number of seconds from 1 to 3600: '%s'\n",
                        optarg);
                return 2;
            }
            timeout_s = (unsigned)t;
            break;
        case 'L':
            errno = 0;
            unsigned long late = strtoul(optarg, &end, 10);

            if (errno || *end || end == optarg || late > 60000) {
                fprintf(stderr,
                        "hermes-conformance: --ttl-late: not a "
                        "number of milliseconds from 0 to 60000: '%s'\n",
                        optarg);
                return 2;
            }
            c->ttl_late_ms = (unsigned)late;
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
    hm_plugin plugin;

    memset(&plugin, 0, sizeof plugin);
    if (hm_plugin_load(spec, have_cfg ? cfg.plugin_path : NULL, &plugin, err,
                       sizeof err) != HERMES_OK) {
        count(CONF_FAIL, "load", err);
        summary();
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

    /* The checks of this run, in table order, each counted once. */
    int selected[NCHECKS], open_ok = 0;

    for (size_t i = 0; i < NCHECKS; i++)
        selected[i] = !((checks[i].flags & NEEDS_KILL) && !c->kill_cmd) &&
                      !((checks[i].flags & NEEDS_RESTART) && !c->restart_cmd);
    for (size_t i = 0; i < NCHECKS; i++) {
        if (!selected[i])
            continue;
        if ((checks[i].flags & NEEDS_STATE) && !open_ok) {
            count(CONF_SKIP, checks[i].name, "not run: open failed");
            continue;
        }
        size_t last = i;

        while (last + 1 < NCHECKS && selected[last + 1] &&
               (checks[last].flags & WITH_NEXT))
            last++;
        run_group(c, i, last, timeout_s, &open_ok);
        i = last;
    }

    /* Leave nothing behind, unless the server was left down on purpose. */
    if (open_ok && (!c->kill_cmd || c->restart_cmd))
        cleanup(c, timeout_s);
    summary();
    hm_plugin_unload(&plugin);
    pthread_mutex_destroy(&c->serial);
    pthread_mutex_destroy(&c->reason_mu);
    free(spec);
    if (have_cfg)
        hm_config_free(&cfg);
    fflush(stdout);
    return tally.failed ? 1 : 0;
}
