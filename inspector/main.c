/*
 * hermes-inspector - watch a Hermes cache live: tags and their versions,
 * entries and whether they are fresh or stale (and which tag moved), the
 * garbage stale entries cost, held locks, and the contention the running
 * processes publish.  Interactive on a terminal (tui.c), or one snapshot as
 * text (--once) or JSON (--json).  --demo runs a workload in this process
 * so that there is something to watch, on the in-process dict too.
 *
 * Like hermesctl it links the core's convenience library: the inspection
 * layer (core/inspect.h) is internal.  Exit status: 0 success, 1 failure
 * (message on stderr), 2 usage error; after a signal, 128 + its number.
 */
#ifdef HAVE_CONFIG_H
#include <autoconfig.h>
#endif

#include <getopt.h>
#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <hermes/hermes.h>

#include "batch.h"
#include "clock.h"
#include "demo.h"
#include "source.h"
#include "tui.h"

#define EXIT_USAGE 2
#define DEFAULT_INTERVAL_MS 1000
/* --demo --once/--json waits at most this long for the first values. */
#define DEMO_WARM_MS 10000

/* The demo on the built-in dict publishes its counters (off by default
 * for a backend nobody else can read) so that the Processes pane has a
 * row, every second like the refresh. */
static const char demo_defaults[] = "[hermes]\n"
                                    "backend = dict\n"
                                    "publish_stats = yes\n"
                                    "publish_interval_ms = 1000\n";

static const char *progname = "hermes-inspector";

static void usage(FILE *out)
{
    fprintf(out,
            "usage: %s [-c CONFIG] [-r SECONDS] [--demo] [--once | --json]\n"
            "\n"
            "Shows what a Hermes cache holds, live: tags, entries and their\n"
            "state, stale-entry garbage, locks and lock contention.\n"
            "\n"
            "Options:\n"
            "  -c, --config CONFIG   INI file (default: $HERMES_CONFIG, else "
            "the\n"
            "                        built-in defaults: the dict backend)\n"
            "  -r, --interval SECS   refresh every SECS seconds (default 1, "
            "may\n"
            "                        be fractional: 0.5)\n"
            "      --demo            run a demo workload in this process\n"
            "      --once            print one snapshot as text and exit\n"
            "      --json            print one snapshot as JSON and exit\n"
            "  -h, --help            this text\n"
            "  -V, --version         the version\n"
            "\n"
            "Keys: arrows PgUp PgDn Home End move, Tab pane, Enter detail,\n"
            "i invalidate tag, x delete entry, F flush, / filter, s sort,\n"
            "p pause, ? help, q quit.  See hermes-inspector(1).\n",
            progname);
}

static int parse_interval(const char *s, unsigned *ms)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end || !isfinite(v) || v < 0.05 || v > 3600)
        return -1;
    *ms = (unsigned)(v * 1000 + 0.5);
    return 0;
}

/* ------------------------------------------------- the screen's callbacks */

struct app {
    hermes *h;
    insp_refresher *r;
};

static bool app_take(void *arg, insp_model *m)
{
    struct app *a = arg;
    return insp_refresher_take(a->r, m);
}

static void app_pause(void *arg, bool paused)
{
    struct app *a = arg;
    insp_refresher_pause(a->r, paused);
}

static void app_kick(void *arg)
{
    struct app *a = arg;
    insp_refresher_kick(a->r);
}

static void app_invalidate(void *arg, const char *tag, char *msg, size_t cap)
{
    struct app *a = arg;
    insp_act_invalidate(a->h, tag, msg, cap);
}

static void app_delete(void *arg, const char *key, char *msg, size_t cap)
{
    struct app *a = arg;
    insp_act_delete(a->h, key, msg, cap);
}

static void app_flush(void *arg, char *msg, size_t cap)
{
    struct app *a = arg;
    insp_act_flush(a->h, msg, cap);
}

static int interactive(hermes *h, unsigned interval_ms)
{
    struct app a = {h, NULL};
    insp_model m;
    if (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO)) {
        fprintf(stderr,
                "%s: not a terminal (use --once or --json for a snapshot)\n",
                progname);
        return 1;
    }
    if (insp_refresher_start(&a.r, h, interval_ms) != 0) {
        perror("hermes-inspector: refresh thread");
        return 1;
    }
    insp_model_init(&m);
    insp_tui t = {&a,         app_take, app_pause, app_kick, app_invalidate,
                  app_delete, app_flush};
    int rc = insp_tui_run(&t, &m);
    insp_refresher_stop(a.r);
    insp_model_free(&m);
    if (rc < 0) {
        fprintf(stderr, "%s: cannot run the terminal (TERM=%s)\n", progname,
                getenv("TERM") ? getenv("TERM") : "");
        return 1;
    }
    return rc;
}

/* --demo's process publishes its counters a moment after its first
 * calls: a demo snapshot waits this long at most for them to appear. */
#define DEMO_PUBLISH_MS 6000

/* Whether process pid's counters are in m. */
static bool published(const insp_model *m, long pid)
{
    for (size_t i = 0; i < m->nprocs; i++)
        if (m->procs[i].pid == pid)
            return true;
    return false;
}

static int batch(hermes *h, insp_demo *demo, bool json)
{
    insp_model m;
    if (demo && !insp_demo_wait_warm(demo, DEMO_WARM_MS))
        fprintf(stderr, "%s: the demo had no answer in %d ms\n", progname,
                DEMO_WARM_MS);
    hermes_rc rc = insp_refresh(h, NULL, &m);
    for (int64_t until = insp_wall_ms() + DEMO_PUBLISH_MS;
         demo && rc == HERMES_OK && !published(&m, getpid()) &&
         insp_wall_ms() < until;) {
        insp_model_free(&m);
        insp_sleep_ms(100);
        rc = insp_refresh(h, NULL, &m);
    }
    if (json)
        insp_print_json(stdout, &m);
    else
        insp_print_text(stdout, &m, insp_wall_ms());
    if (rc != HERMES_OK)
        fprintf(stderr, "%s: %s\n", progname, m.error ? m.error : "");
    insp_model_free(&m);
    return rc == HERMES_OK && fflush(stdout) == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    enum { OPT_DEMO = 256, OPT_ONCE, OPT_JSON };
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'},
        {"interval", required_argument, NULL, 'r'},
        {"demo", no_argument, NULL, OPT_DEMO},
        {"once", no_argument, NULL, OPT_ONCE},
        {"json", no_argument, NULL, OPT_JSON},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    const char *config = NULL;
    unsigned interval_ms = DEFAULT_INTERVAL_MS;
    bool demo = false, once = false, json = false;
    int c;
    /* The terminal's character set, for names beyond ASCII (layout.h);
     * only LC_CTYPE, so that numbers keep their '.' in every output. */
    setlocale(LC_CTYPE, "");
    while ((c = getopt_long(argc, argv, "c:r:hV", longopts, NULL)) != -1) {
        switch (c) {
        case 'c':
            config = optarg;
            break;
        case 'r':
            if (parse_interval(optarg, &interval_ms) != 0) {
                fprintf(stderr,
                        "%s: -r: not a number of seconds from 0.05 to "
                        "3600: '%s'\n",
                        progname, optarg);
                return EXIT_USAGE;
            }
            break;
        case OPT_DEMO:
            demo = true;
            break;
        case OPT_ONCE:
            once = true;
            break;
        case OPT_JSON:
            json = true;
            break;
        case 'h':
            usage(stdout);
            return 0;
        case 'V':
#ifdef PACKAGE_VERSION
            printf("hermes-inspector %s\n", PACKAGE_VERSION);
#endif
            return 0;
        default:
            usage(stderr);
            return EXIT_USAGE;
        }
    }
    if (optind < argc || (once && json)) {
        fprintf(stderr, "%s: %s\n", progname,
                optind < argc ? "unexpected argument"
                              : "--once and --json exclude each other");
        usage(stderr);
        return EXIT_USAGE;
    }

    hermes *h = NULL;
    const char *env = getenv("HERMES_CONFIG");
    hermes_rc rc = demo && !config && !(env && *env)
                       ? hermes_open_string(&h, demo_defaults, "<demo>")
                       : hermes_open(&h, config);
    if (rc != HERMES_OK) {
        fprintf(stderr, "%s: %s\n", progname,
                h ? hermes_errmsg(h) : hermes_strerror(rc));
        hermes_close(h);
        return 1;
    }
    insp_demo *d = NULL;
    char err[256];
    if (demo && insp_demo_start(&d, h, err, sizeof err) != 0) {
        fprintf(stderr, "%s: %s\n", progname, err);
        hermes_close(h);
        return 1;
    }
    int status = once || json ? batch(h, d, json) : interactive(h, interval_ms);
    insp_demo_stop(d);
    hermes_close(h);
    return status;
}
