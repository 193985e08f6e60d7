/*
 * Batch output (batch.h): one model printed as text (the screen's tables,
 * every row, for people and grep) or as JSON (the schema in
 * hermes-inspector(1), for scripts and tests).  Version ids are hex
 * strings in JSON because 64-bit integers do not survive every JSON
 * parser; absent values are null.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "batch.h"
#include "keys.h"
#include "layout.h"

/* ----------------------------------------------------------------- text */

static void print_line(void *arg, const char *line)
{
    fprintf(arg, "%s\n", line);
}

void insp_print_text(FILE *out, const insp_model *m, int64_t now_ms)
{
    insp_ui ui;
    char when[64], stale[16];
    time_t t = (time_t)(m->taken_ms / 1000);
    struct tm tm;
    insp_ui_init(&ui, 0, 0);
    if (!gmtime_r(&t, &tm) ||
        strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
        snprintf(when, sizeof when, "?");
    insp_fmt_bytes(m->total.stale_bytes, stale, sizeof stale);
    fprintf(out, "hermes-inspector %s:%s at %s: %" PRIu64 " keys in %.1f ms\n",
            m->backend ? m->backend : "?", m->prefix ? m->prefix : "?", when,
            m->keys_scanned, (double)m->scan_us / 1000);
    if (m->error)
        fprintf(out, "error: %s\n", m->error);
    fprintf(out, "%zu entries:", m->nentries);
    for (int s = 0; s < INSP_NSTATES; s++)
        fprintf(out, " %zu %s%s", m->by_state[s], insp_state_name(s),
                s + 1 < INSP_NSTATES ? "," : "");
    fprintf(out, "; garbage %zu stale entries, %s; %zu locks\n", m->total.stale,
            stale, m->nlocks);
    const insp_contention *c = &m->contention;
    fprintf(out,
            "contention: %" PRIu64 " of %" PRIu64 " lock acquisitions "
            "contended, %" PRIu64 " timeouts, %" PRIu64
            " coalesced; wait p50 <= %" PRIu64 " us, p99 <= %" PRIu64 " us\n",
            c->contended, c->acquired, c->timeouts, c->coalesced, c->p50_us,
            c->p99_us);
    for (int p = 0; p < INSP_NPANES; p++) {
        fprintf(out, "\n");
        insp_render_table(m, &ui, p, 100, now_ms, print_line, out);
    }
}

/* ----------------------------------------------------------------- JSON */

/* The length of the valid UTF-8 sequence of 2 to 4 bytes at p (no
 * overlong form, no surrogate, nothing past U+10FFFF), or 0. */
static size_t utf8_len(const unsigned char *p)
{
    size_t n = p[0] >= 0xf0 ? 4 : p[0] >= 0xe0 ? 3 : p[0] >= 0xc2 ? 2 : 0;
    if (n == 0 || p[0] > 0xf4)
        return 0;
    for (size_t i = 1; i < n; i++)
        if ((p[i] & 0xc0) != 0x80)
            return 0; /* also stops at the terminating NUL */
    if ((p[0] == 0xe0 && p[1] < 0xa0) || (p[0] == 0xed && p[1] > 0x9f) ||
        (p[0] == 0xf0 && p[1] < 0x90) || (p[0] == 0xf4 && p[1] > 0x8f))
        return 0;
    return n;
}

/* s as a JSON string: valid UTF-8 as it is, each byte that is not part
 * of it as U+FFFD, so that the output is always valid JSON. */
static void jstr(FILE *out, const char *s)
{
    if (!s) {
        fputs("null", out);
        return;
    }
    fputc('"', out);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '"':
            fputs("\\\"", out);
            break;
        case '\\':
            fputs("\\\\", out);
            break;
        case '\n':
            fputs("\\n", out);
            break;
        case '\t':
            fputs("\\t", out);
            break;
        default:
            if (*p < 0x20 || *p == 0x7f) {
                fprintf(out, "\\u%04x", *p);
            } else if (*p < 0x80) {
                fputc(*p, out);
            } else {
                size_t n = utf8_len(p);
                if (n == 0) {
                    fputs("\\ufffd", out);
                } else {
                    fwrite(p, 1, n, out);
                    p += n - 1;
                }
            }
        }
    }
    fputc('"', out);
}

static void jkey(FILE *out, const char *k)
{
    jstr(out, k);
    fputc(':', out);
}

static void jnum(FILE *out, const char *k, uint64_t v)
{
    jkey(out, k);
    fprintf(out, "%" PRIu64, v);
}

/* A signed value or null: TTLs without expiry, unknown ages. */
static void jopt(FILE *out, const char *k, int64_t v, bool present)
{
    jkey(out, k);
    if (present)
        fprintf(out, "%" PRId64, v);
    else
        fputs("null", out);
}

static void jhex(FILE *out, const char *k, uint64_t v, bool present)
{
    jkey(out, k);
    if (present)
        fprintf(out, "\"%016" PRIx64 "\"", v);
    else
        fputs("null", out);
}

static void json_tags(FILE *out, const insp_model *m)
{
    jkey(out, "tags");
    fputc('[', out);
    for (size_t i = 0; i < m->ntags; i++) {
        const insp_tag *t = &m->tags[i];
        fputs(i ? ",{" : "{", out);
        jkey(out, "name");
        jstr(out, t->name);
        fputc(',', out);
        jkey(out, "version");
        jstr(out, t->gone ? NULL : t->version);
        fputc(',', out);
        jhex(out, "version_id", t->version_id, !t->gone);
        fputs(",\"gone\":", out);
        fputs(t->gone ? "true" : "false", out);
        fputc(',', out);
        jnum(out, "entries", t->entries);
        fputc(',', out);
        jnum(out, "stale", t->stale);
        fputc(',', out);
        jopt(out, "changed_ms", t->changed_ms, t->changed_ms > 0);
        fputc('}', out);
    }
    fputc(']', out);
}

static void json_entries(FILE *out, const insp_model *m)
{
    jkey(out, "entries");
    fputc('[', out);
    for (size_t i = 0; i < m->nentries; i++) {
        const insp_entry *e = &m->entries[i];
        fputs(i ? ",{" : "{", out);
        jkey(out, "key");
        jstr(out, e->key);
        fputc(',', out);
        jkey(out, "function");
        jstr(out, *e->function ? e->function : NULL);
        fputc(',', out);
        jkey(out, "id");
        jstr(out, e->id);
        fputc(',', out);
        jkey(out, "state");
        jstr(out, insp_state_name(e->state));
        fputc(',', out);
        jnum(out, "size", e->size);
        fputc(',', out);
        jopt(out, "ttl_left_ms", e->ttl_left_ms, e->ttl_left_ms != INSP_NO_TTL);
        fputc(',', out);
        jopt(out, "created_ms", e->created_ms, e->created_ms > 0);
        fputc(',', out);
        jnum(out, "compute_us", e->compute_us);
        fputc(',', out);
        jkey(out, "moved");
        jstr(out, e->moved);
        fputc(',', out);
        jkey(out, "reason");
        jstr(out, e->reason);
        fputs(",\"tags\":[", out);
        for (size_t j = 0; j < e->ntags; j++) {
            const insp_tag_ref *r = &e->tags[j];
            fputs(j ? ",{" : "{", out);
            jkey(out, "name");
            jstr(out, r->name);
            fputc(',', out);
            jhex(out, "stored", r->stored, true);
            fputc(',', out);
            jhex(out, "current", r->current, r->present);
            fputs(",\"moved\":", out);
            fputs(!r->present || r->current != r->stored ? "true" : "false",
                  out);
            fputc('}', out);
        }
        fputs("]}", out);
    }
    fputc(']', out);
}

static void json_garbage_fields(FILE *out, const insp_garbage *g)
{
    jnum(out, "entries", g->entries);
    fputc(',', out);
    jnum(out, "bytes", g->bytes);
    fputc(',', out);
    jnum(out, "stale", g->stale);
    fputc(',', out);
    jnum(out, "stale_bytes", g->stale_bytes);
}

static void json_garbage(FILE *out, const insp_model *m)
{
    jkey(out, "garbage");
    fputc('{', out);
    json_garbage_fields(out, &m->total);
    fputs(",\"functions\":[", out);
    for (size_t i = 0; i < m->ngarbage; i++) {
        const insp_garbage *g = &m->garbage[i];
        fputs(i ? ",{" : "{", out);
        jkey(out, "function");
        jstr(out, *g->function ? g->function : NULL);
        fputc(',', out);
        json_garbage_fields(out, g);
        fputc('}', out);
    }
    fputs("]}", out);
}

static void json_locks(FILE *out, const insp_model *m)
{
    jkey(out, "locks");
    fputc('[', out);
    for (size_t i = 0; i < m->nlocks; i++) {
        const insp_lock *l = &m->locks[i];
        fputs(i ? ",{" : "{", out);
        jkey(out, "entry");
        jstr(out, l->entry);
        fputc(',', out);
        jkey(out, "host");
        jstr(out, l->host);
        fputc(',', out);
        jnum(out, "pid", (uint64_t)(l->pid > 0 ? l->pid : 0));
        fputc(',', out);
        jopt(out, "age_ms", l->age_ms, l->age_ms >= 0);
        fputc(',', out);
        jopt(out, "ttl_left_ms", l->ttl_left_ms, l->ttl_left_ms != INSP_NO_TTL);
        fputc('}', out);
    }
    fputc(']', out);
}

static void json_waits(FILE *out, const uint64_t *hist, uint64_t p50,
                       uint64_t p90, uint64_t p99)
{
    jnum(out, "wait_p50_us", p50);
    fputc(',', out);
    jnum(out, "wait_p90_us", p90);
    fputc(',', out);
    jnum(out, "wait_p99_us", p99);
    fputs(",\"wait_histogram\":[", out);
    bool first = true;
    for (size_t b = 0; b < INSP_HIST_BUCKETS; b++) {
        if (!hist[b])
            continue;
        fprintf(out, "%s{\"below_us\":%" PRIu64 ",\"count\":%" PRIu64 "}",
                first ? "" : ",", (uint64_t)1 << b, hist[b]);
        first = false;
    }
    fputc(']', out);
}

static void json_procs(FILE *out, const insp_model *m)
{
    jkey(out, "processes");
    fputc('[', out);
    for (size_t i = 0; i < m->nprocs; i++) {
        const insp_proc *p = &m->procs[i];
        fputs(i ? ",{" : "{", out);
        jkey(out, "host");
        jstr(out, p->host);
        fputc(',', out);
        jnum(out, "pid", (uint64_t)(p->pid > 0 ? p->pid : 0));
        fputc(',', out);
        jopt(out, "age_ms", p->age_ms, p->age_ms >= 0);
        const struct {
            const char *k;
            uint64_t v;
        } c[] = {
            {"hits", p->hits},
            {"misses", p->misses},
            {"computations", p->computations},
            {"coalesced", p->coalesced},
            {"lock_acquired", p->lock_acquired},
            {"lock_contended", p->lock_contended},
            {"lock_timeouts", p->lock_timeouts},
            {"backend_errors", p->backend_errors},
        };
        for (size_t k = 0; k < sizeof c / sizeof *c; k++) {
            fputc(',', out);
            jnum(out, c[k].k, c[k].v);
        }
        fputc(',', out);
        json_waits(out, p->wait_hist,
                   insp_hist_percentile(p->wait_hist, INSP_HIST_BUCKETS, 50),
                   insp_hist_percentile(p->wait_hist, INSP_HIST_BUCKETS, 90),
                   insp_hist_percentile(p->wait_hist, INSP_HIST_BUCKETS, 99));
        fputs(",\"functions\":[", out);
        for (size_t j = 0; j < p->nfns; j++) {
            fputs(j ? ",{" : "{", out);
            jkey(out, "name");
            jstr(out, p->fns[j].name);
            fputc(',', out);
            jnum(out, "hits", p->fns[j].hits);
            fputc(',', out);
            jnum(out, "misses", p->fns[j].misses);
            fputc('}', out);
        }
        fputs("]}", out);
    }
    fputc(']', out);
}

void insp_print_json(FILE *out, const insp_model *m)
{
    const insp_contention *c = &m->contention;
    fputc('{', out);
    jnum(out, "schema", INSP_JSON_SCHEMA);
    fputc(',', out);
    jkey(out, "backend");
    jstr(out, m->backend);
    fputc(',', out);
    jkey(out, "prefix");
    jstr(out, m->prefix);
    fputc(',', out);
    jnum(out, "taken_ms", (uint64_t)(m->taken_ms > 0 ? m->taken_ms : 0));
    fputc(',', out);
    jnum(out, "keys_scanned", m->keys_scanned);
    fputc(',', out);
    jnum(out, "scan_us", m->scan_us);
    fputc(',', out);
    jkey(out, "error");
    jstr(out, m->error);
    fputs(",\"states\":{", out);
    for (int s = 0; s < INSP_NSTATES; s++) {
        if (s)
            fputc(',', out);
        jnum(out, insp_state_name(s), m->by_state[s]);
    }
    fputs("},", out);
    json_tags(out, m);
    fputc(',', out);
    json_entries(out, m);
    fputc(',', out);
    json_garbage(out, m);
    fputc(',', out);
    json_locks(out, m);
    fputc(',', out);
    json_procs(out, m);
    fputs(",\"contention\":{", out);
    jnum(out, "acquired", c->acquired);
    fputc(',', out);
    jnum(out, "contended", c->contended);
    fputc(',', out);
    jnum(out, "timeouts", c->timeouts);
    fputc(',', out);
    jnum(out, "coalesced", c->coalesced);
    fputc(',', out);
    json_waits(out, c->wait_hist, c->p50_us, c->p90_us, c->p99_us);
    fputs("}}\n", out);
}
