/*
 * Hermes for C - cache function results with tag-based invalidation and
 * dogpile prevention.  This is the application API; see README.md for a
 * walk-through and <hermes/backend.h> for the plugin ABI.
 *
 * Conventions:
 *  - Every function that can fail returns a hermes_rc; HERMES_OK is 0.
 *    hermes_strerror() turns a code into words, hermes_errmsg() gives the
 *    detail of the last failure on a handle in the calling thread.
 *  - A handle (hermes *) and registered functions (hermes_fn *) may be used
 *    from many threads at once.  Registration and close are not concurrent
 *    with anything else on the same handle.
 *  - Memory the library returns is freed with hermes_free(); memory the
 *    caller passes in stays the caller's and is copied if kept.
 */
#ifndef HERMES_HERMES_H
#define HERMES_HERMES_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define HERMES_VERSION "0.1.0"

/* Result codes.  X(name, value, text): one list, so code and text cannot drift.
 */
#define HERMES_RC_MAP(X)                                                       \
    X(OK, 0, "success")                                                        \
    X(ENOMEM, 1, "out of memory")                                              \
    X(EINVAL, 2, "invalid argument")                                           \
    X(ECONFIG, 3, "configuration error")                                       \
    X(EPLUGIN, 4, "backend plugin could not be loaded")                        \
    X(EBACKEND, 5, "backend operation failed")                                 \
    X(ECOMPUTE, 6, "compute callback failed")                                  \
    X(ETIMEOUT, 7, "timed out waiting for another caller's computation")       \
    X(ENOTFOUND, 8, "not found")                                               \
    X(EEXIST, 9, "already exists")                                             \
    X(ETOOBIG, 10, "value or key too large")

typedef enum hermes_rc {
#define HERMES__RC_ENUM(name, value, text) HERMES_##name = value,
    HERMES_RC_MAP(HERMES__RC_ENUM)
#undef HERMES__RC_ENUM
} hermes_rc;

/* A static string describing rc; never NULL. */
const char *hermes_strerror(hermes_rc rc);

typedef struct hermes hermes;
typedef struct hermes_fn hermes_fn;

/* ---------------------------------------------------------------- handle */

/*
 * Opens a cache from the INI file at path.  With path NULL, the file named
 * by the environment variable HERMES_CONFIG is used, and without it the
 * built-in defaults (the in-process dict backend, ttl 3600, prefix "cache").
 *
 * On success *out is a usable handle.  On failure *out is still set to a
 * handle that only hermes_errmsg() and hermes_close() accept, so that the
 * detail (file:line: key: reason) can be read; it is NULL only when memory
 * ran out.  Either way the caller closes it.
 */
hermes_rc hermes_open(hermes **out, const char *path);

/* As hermes_open(), from INI text; source names it in messages. */
hermes_rc hermes_open_string(hermes **out, const char *text,
                             const char *source);

/* As hermes_open() with the built-in defaults, ignoring HERMES_CONFIG. */
hermes_rc hermes_open_defaults(hermes **out);

/*
 * As hermes_open_string() (text may be NULL for the defaults), with a
 * backend linked into the application instead of a plugin file: the
 * descriptor is checked like a loaded plugin's, and its config section is
 * the one named after backend->name.  The descriptor must outlive the
 * handle.  Useful for embedding a store, and for tests.
 */
struct hermes_backend;
hermes_rc hermes_open_with(hermes **out, const char *text, const char *source,
                           const struct hermes_backend *backend);

/* Closes the handle and every hermes_fn registered on it.  NULL is fine. */
void hermes_close(hermes *h);

/*
 * The detail of the last failure of a call on h in this thread, or of
 * hermes_open() on the handle it returned.  Valid until the next call on h
 * in this thread.  Never NULL.
 */
const char *hermes_errmsg(const hermes *h);

/* Frees memory returned by the library (values, stats text).  NULL is fine. */
void hermes_free(void *p);

/* Name and version of the backend in use, e.g. "dict", "0.1.0". */
const char *hermes_backend_name(const hermes *h);
const char *hermes_backend_version(const hermes *h);

/* ------------------------------------------------------ argument encoding */

/*
 * The bytes an entry's key is derived from.  Each argument is written with
 * a type tag and a length, so (1, "ab") and ("1a", "b") never collide.
 * Initialize with HERMES_ARGS_INIT; free with hermes_args_free().
 */
typedef struct hermes_args {
    unsigned char *data;
    size_t len, cap;
    int failed;                /* set when an append ran out of memory */
    unsigned char inline_[96]; /* small argument lists need no allocation */
} hermes_args;

#define HERMES_ARGS_INIT                                                       \
    {                                                                          \
        0                                                                      \
    }

void hermes_args_int(hermes_args *a, int64_t v);
void hermes_args_uint(hermes_args *a, uint64_t v);
void hermes_args_double(hermes_args *a, double v);
void hermes_args_str(hermes_args *a, const char *s); /* NULL is its own value */
void hermes_args_bytes(hermes_args *a, const void *p, size_t n);
void hermes_args_free(hermes_args *a);

/* ------------------------------------------------------------ memoization */

/* What a compute callback fills in: see hermes_result_*(). */
typedef struct hermes_result hermes_result;

/*
 * Computes the value for one call.  arg is the pointer given to
 * hermes_call().  Return 0 after setting the value with hermes_result_set();
 * return non-zero to fail: nothing is cached, hermes_call() returns
 * HERMES_ECOMPUTE to the caller and to every caller waiting on this
 * computation, with the message set by hermes_result_error() if any.
 */
typedef int (*hermes_compute_fn)(void *arg, hermes_result *res);

/* Copies n bytes as the computed value.  HERMES_ENOMEM when the copy cannot
 * be allocated; a callback that then fails makes hermes_call() return
 * HERMES_ENOMEM rather than HERMES_ECOMPUTE. */
hermes_rc hermes_result_set(hermes_result *res, const void *p, size_t n);
/* The value is returned to the callers but not stored (Hermes never caches
 * None). */
void hermes_result_nocache(hermes_result *res);
/* Stores this value with its own TTL in seconds instead of the function's. */
void hermes_result_ttl(hermes_result *res, uint32_t ttl_seconds);
/* A message for a failed computation (copied). */
void hermes_result_error(hermes_result *res, const char *msg);

/*
 * Writes the entry key of a call (the text after "<prefix>:entry:") into
 * buf of size cap, snprintf-style: returns the length it needs; when that is
 * >= cap the library calls again with a larger buffer.  A negative return is
 * an error.  arg is the pointer given to hermes_call()/hermes_invalidate().
 */
typedef int (*hermes_key_fn)(void *arg, char *buf, size_t cap);

typedef struct hermes_fn_options {
    const char *const *tags; /* NULL-terminated list, or NULL for no tags */
    uint32_t ttl;            /* seconds; 0 = the handle's default ttl */
    hermes_key_fn key;       /* custom key, or NULL for "<name>:<arghash>" */
} hermes_fn_options;

/* A NULL-terminated tag list literal: HERMES_TAGS("math", "power"). */
#define HERMES_TAGS(...) ((const char *const[]){__VA_ARGS__, NULL})

/*
 * Registers a cached function called name (printable, no spaces) with
 * options opts (may be NULL; copied).  *out stays valid until
 * hermes_close(h).  HERMES_EEXIST if name is already registered.
 */
hermes_rc hermes_fn_register(hermes *h, const char *name,
                             const hermes_fn_options *opts, hermes_fn **out);

/*
 * The cached call.  args/args_len are the encoded arguments (see
 * hermes_args; any unambiguous bytes will do).  On a hit, the stored value
 * is returned; on a miss, compute(arg, res) runs at most once per entry at a
 * time across threads and, with a shared backend, across processes.
 *
 * On HERMES_OK, *value (malloc'ed, NUL-terminated for convenience after len
 * bytes) and *len are set; free *value with hermes_free().  When the backend
 * fails, the value is computed directly (unless on_backend_error = fail).
 * On failure *value is NULL.
 */
hermes_rc hermes_call(hermes_fn *fn, const void *args, size_t args_len,
                      hermes_compute_fn compute, void *arg, void **value,
                      size_t *len);

/* Deletes the entry of one call (arg is for the custom key function). */
hermes_rc hermes_invalidate(hermes_fn *fn, const void *args, size_t args_len,
                            void *arg);

/* The handle a function was registered on. */
hermes *hermes_fn_handle(const hermes_fn *fn);

/* -------------------------------------------------------- direct access */

/*
 * Plain get/set/delete under "<prefix>:entry:<key>" for callers that do not
 * fit the memoize shape.  The same record format and tag protocol apply:
 * hermes_get() with the tags the value was set with is a hit only while
 * none of them has been cleaned.  tags may be NULL.
 */
hermes_rc hermes_get(hermes *h, const char *key, const char *const *tags,
                     void **value, size_t *len); /* HERMES_ENOTFOUND on miss */
hermes_rc hermes_set(hermes *h, const char *key, const void *value, size_t len,
                     const char *const *tags, uint32_t ttl);
hermes_rc hermes_delete(hermes *h, const char *key);

/* Invalidates every entry tagged with any of tags (NULL-terminated).
 * HERMES_EINVAL when tags is NULL or empty: to delete every entry, call
 * hermes_flush(). */
hermes_rc hermes_clean(hermes *h, const char *const *tags);
/* Deletes every key under the prefix: entries, tags and locks. */
hermes_rc hermes_flush(hermes *h);

/* ------------------------------------------------------------------ stats */

typedef struct hermes_stats {
    uint64_t hits;           /* calls answered from the backend */
    uint64_t misses;         /* calls that found no fresh entry */
    uint64_t stale;          /* misses where an entry existed but a tag
                                version had changed */
    uint64_t computations;   /* compute callbacks run */
    uint64_t compute_errors; /* compute callbacks that failed */
    uint64_t coalesced;      /* callers served by another thread's
                                computation in this process */
    uint64_t lock_acquired;  /* backend locks taken */
    uint64_t lock_contended; /* lock attempts that found it held */
    uint64_t lock_wait_ns;   /* time spent waiting for held locks */
    uint64_t lock_timeouts;  /* waits that reached lock_wait_ms */
    uint64_t backend_errors; /* backend operations that failed */
    uint64_t corrupt;        /* records that did not decode */
} hermes_stats;

void hermes_stats_get(const hermes *h, hermes_stats *out);

/* ------------------------------------------------- decorator-style macros */

/*
 * HERMES_FUNCn(RT, name, T1, a1, ...) defines a cached C function
 *     RT name(T1 a1, ...)
 * whose body follows the macro, plus name_invalidate(T1 a1, ...).  RT and
 * the argument types are integers, double, or strings (const char * for
 * arguments, char * for a result).  A string result is malloc'ed: the body
 * returns a malloc'ed string, and the caller of name() frees what it gets
 * with free() (a cached copy or the body's own string).  Before
 * the first call, attach it to a handle:
 *
 *     HERMES_FUNC2(int64_t, foo, int64_t, a, int64_t, b) { return a * b; }
 *     ...
 *     HERMES_REGISTER(h, foo, .tags = HERMES_TAGS("math"), .ttl = 1200);
 *
 * A custom key is a function int k(char *buf, size_t cap, T1 a1, ...)
 * returning snprintf's value, attached with HERMES_REGISTER_KEYED(h, name,
 * k, ...).  When the cache cannot be used (not registered, backend down,
 * out of memory) the function computes directly: a cached function always
 * returns its value.
 */

/* Encoding of scalar and string arguments and results (internal). */
/* No default: an argument or result of another type (long double,
 * pointers, structs) is a compile error, never a silently lossy key. */
#define HERMES__ARG(enc, x)                                                    \
    _Generic((x),                                                            \
        char *: hermes__args_cstr,                                           \
        const char *: hermes__args_cstr,                                     \
        float: hermes__args_dbl,                                             \
        double: hermes__args_dbl,                                            \
        char: hermes__args_i64,                                              \
        signed char: hermes__args_i64,                                       \
        short: hermes__args_i64,                                             \
        int: hermes__args_i64,                                               \
        long: hermes__args_i64,                                              \
        long long: hermes__args_i64,                                         \
        unsigned char: hermes__args_u64,                                     \
        unsigned short: hermes__args_u64,                                    \
        unsigned int: hermes__args_u64,                                      \
        unsigned long: hermes__args_u64,                                     \
        unsigned long long: hermes__args_u64,                                \
        _Bool: hermes__args_u64)(enc, x)

/* A string result is char * (malloc'ed by the body, freed here after it is
 * stored); const char * is refused so a literal is never freed. */
#define HERMES__PUT(res, x)                                                    \
    _Generic((x),                                                            \
        char *: hermes__put_cstr,                                            \
        float: hermes__put_dbl,                                              \
        double: hermes__put_dbl,                                             \
        char: hermes__put_i64,                                               \
        signed char: hermes__put_i64,                                        \
        short: hermes__put_i64,                                              \
        int: hermes__put_i64,                                                \
        long: hermes__put_i64,                                               \
        long long: hermes__put_i64,                                          \
        unsigned char: hermes__put_i64,                                      \
        unsigned short: hermes__put_i64,                                     \
        unsigned int: hermes__put_i64,                                       \
        unsigned long: hermes__put_i64,                                      \
        unsigned long long: hermes__put_i64,                                 \
        _Bool: hermes__put_i64)(res, x)

#define HERMES__GET(p, n, out)                                                 \
    _Generic((out),                                                          \
        char **: hermes__get_cstr,                                           \
        float *: hermes__get_flt,                                            \
        double *: hermes__get_dbl,                                           \
        signed char *: hermes__get_sc,                                       \
        char *: hermes__get_sc,                                              \
        short *: hermes__get_s,                                              \
        int *: hermes__get_i,                                                \
        long *: hermes__get_l,                                               \
        long long *: hermes__get_ll,                                         \
        unsigned char *: hermes__get_uc,                                     \
        unsigned short *: hermes__get_us,                                    \
        unsigned int *: hermes__get_ui,                                      \
        unsigned long *: hermes__get_ul,                                     \
        unsigned long long *: hermes__get_ull,                               \
        _Bool *: hermes__get_b)(p, n, (void *)(out))

void hermes__args_cstr(hermes_args *a, const char *s);
void hermes__args_dbl(hermes_args *a, double v);
void hermes__args_u64(hermes_args *a, uint64_t v);
void hermes__args_i64(hermes_args *a, int64_t v);
int hermes__put_cstr(hermes_result *r, const char *s);
int hermes__put_dbl(hermes_result *r, double v);
int hermes__put_i64(hermes_result *r, int64_t v);
int hermes__get_cstr(const void *p, size_t n, void *out);
int hermes__get_flt(const void *p, size_t n, void *out);
int hermes__get_dbl(const void *p, size_t n, void *out);
int hermes__get_sc(const void *p, size_t n, void *out);
int hermes__get_s(const void *p, size_t n, void *out);
int hermes__get_i(const void *p, size_t n, void *out);
int hermes__get_l(const void *p, size_t n, void *out);
int hermes__get_ll(const void *p, size_t n, void *out);
int hermes__get_uc(const void *p, size_t n, void *out);
int hermes__get_us(const void *p, size_t n, void *out);
int hermes__get_ui(const void *p, size_t n, void *out);
int hermes__get_ul(const void *p, size_t n, void *out);
int hermes__get_ull(const void *p, size_t n, void *out);
int hermes__get_b(const void *p, size_t n, void *out);
hermes_rc hermes__register(hermes *h, const char *name,
                           const hermes_fn_options *opts, hermes_fn **slot);

#if defined(__GNUC__)
#define HERMES__UNUSED __attribute__((unused))
#else
#define HERMES__UNUSED
#endif

/* The parts every arity shares: the memo slot and the cached call. */
#define HERMES__MEMO(RT, NAME, PARAMS, KEYPARAMS)                              \
    static RT NAME##__compute PARAMS;                                          \
    static struct {                                                            \
        hermes_fn *fn;                                                         \
        int(*key) KEYPARAMS;                                                   \
    } NAME##__memo;                                                            \
    static int NAME##__thunk(void *p_, hermes_result *r_);                     \
    HERMES__UNUSED static int NAME##__keythunk(void *p_, char *buf_,           \
                                               size_t cap_);                   \
    static inline int NAME##__run(hermes_args *enc_, void *pack_, RT *out_)    \
    {                                                                          \
        void *v_ = NULL;                                                       \
        size_t n_ = 0;                                                         \
        int ok_ = 0;                                                           \
        if (!enc_->failed && NAME##__memo.fn &&                                \
            hermes_call(NAME##__memo.fn, enc_->data, enc_->len, NAME##__thunk, \
                        pack_, &v_, &n_) == HERMES_OK)                         \
            ok_ = HERMES__GET(v_, n_, out_) == 0;                              \
        hermes_free(v_);                                                       \
        hermes_args_free(enc_);                                                \
        return ok_;                                                            \
    }

#define HERMES_FUNC1(RT, NAME, T1, A1)                                         \
    HERMES__MEMO(RT, NAME, (T1 A1), (char *, size_t, T1))                      \
    typedef struct {                                                           \
        T1 A1;                                                                 \
    } NAME##__args;                                                            \
    static int NAME##__thunk(void *p_, hermes_result *r_)                      \
    {                                                                          \
        NAME##__args *a_ = p_;                                                 \
        return HERMES__PUT(r_, NAME##__compute(a_->A1));                       \
    }                                                                          \
    HERMES__UNUSED static int NAME##__keythunk(void *p_, char *buf_,           \
                                               size_t cap_)                    \
    {                                                                          \
        NAME##__args *a_ = p_;                                                 \
        return NAME##__memo.key(buf_, cap_, a_->A1);                           \
    }                                                                          \
    HERMES__UNUSED static int NAME##_invalidate(T1 A1)                         \
    {                                                                          \
        NAME##__args a_ = {A1};                                                \
        hermes_args e_ = HERMES_ARGS_INIT;                                     \
        HERMES__ARG(&e_, A1);                                                  \
        int rc_ = e_.failed ? (int)HERMES_ENOMEM                               \
                  : NAME##__memo.fn                                            \
                      ? (int)hermes_invalidate(NAME##__memo.fn, e_.data,       \
                                               e_.len, &a_)                    \
                      : (int)HERMES_EINVAL;                                    \
        hermes_args_free(&e_);                                                 \
        return rc_;                                                            \
    }                                                                          \
    static RT NAME(T1 A1)                                                      \
    {                                                                          \
        NAME##__args a_ = {A1};                                                \
        hermes_args e_ = HERMES_ARGS_INIT;                                     \
        RT r_;                                                                 \
        HERMES__ARG(&e_, A1);                                                  \
        return NAME##__run(&e_, &a_, &r_) ? r_ : NAME##__compute(A1);          \
    }                                                                          \
    static RT NAME##__compute(T1 A1)

#define HERMES_FUNC2(RT, NAME, T1, A1, T2, A2)                                 \
    HERMES__MEMO(RT, NAME, (T1 A1, T2 A2), (char *, size_t, T1, T2))           \
    typedef struct {                                                           \
        T1 A1;                                                                 \
        T2 A2;                                                                 \
    } NAME##__args;                                                            \
    static int NAME##__thunk(void *p_, hermes_result *r_)                      \
    {                                                                          \
        NAME##__args *a_ = p_;                                                 \
        return HERMES__PUT(r_, NAME##__compute(a_->A1, a_->A2));               \
    }                                                                          \
    HERMES__UNUSED static int NAME##__keythunk(void *p_, char *buf_,           \
                                               size_t cap_)                    \
    {                                                                          \
        NAME##__args *a_ = p_;                                                 \
        return NAME##__memo.key(buf_, cap_, a_->A1, a_->A2);                   \
    }                                                                          \
    HERMES__UNUSED static int NAME##_invalidate(T1 A1, T2 A2)                  \
    {                                                                          \
        NAME##__args a_ = {A1, A2};                                            \
        hermes_args e_ = HERMES_ARGS_INIT;                                     \
        HERMES__ARG(&e_, A1);                                                  \
        HERMES__ARG(&e_, A2);                                                  \
        int rc_ = e_.failed ? (int)HERMES_ENOMEM                               \
                  : NAME##__memo.fn                                            \
                      ? (int)hermes_invalidate(NAME##__memo.fn, e_.data,       \
                                               e_.len, &a_)                    \
                      : (int)HERMES_EINVAL;                                    \
        hermes_args_free(&e_);                                                 \
        return rc_;                                                            \
    }                                                                          \
    static RT NAME(T1 A1, T2 A2)                                               \
    {                                                                          \
        NAME##__args a_ = {A1, A2};                                            \
        hermes_args e_ = HERMES_ARGS_INIT;                                     \
        RT r_;                                                                 \
        HERMES__ARG(&e_, A1);                                                  \
        HERMES__ARG(&e_, A2);                                                  \
        return NAME##__run(&e_, &a_, &r_) ? r_ : NAME##__compute(A1, A2);      \
    }                                                                          \
    static RT NAME##__compute(T1 A1, T2 A2)

#define HERMES_FUNC3(RT, NAME, T1, A1, T2, A2, T3, A3)                         \
    HERMES__MEMO(RT, NAME, (T1 A1, T2 A2, T3 A3),                              \
                 (char *, size_t, T1, T2, T3))                                 \
    typedef struct {                                                           \
        T1 A1;                                                                 \
        T2 A2;                                                                 \
        T3 A3;                                                                 \
    } NAME##__args;                                                            \
    static int NAME##__thunk(void *p_, hermes_result *r_)                      \
    {                                                                          \
        NAME##__args *a_ = p_;                                                 \
        return HERMES__PUT(r_, NAME##__compute(a_->A1, a_->A2, a_->A3));       \
    }                                                                          \
    HERMES__UNUSED static int NAME##__keythunk(void *p_, char *buf_,           \
                                               size_t cap_)                    \
    {                                                                          \
        NAME##__args *a_ = p_;                                                 \
        return NAME##__memo.key(buf_, cap_, a_->A1, a_->A2, a_->A3);           \
    }                                                                          \
    HERMES__UNUSED static int NAME##_invalidate(T1 A1, T2 A2, T3 A3)           \
    {                                                                          \
        NAME##__args a_ = {A1, A2, A3};                                        \
        hermes_args e_ = HERMES_ARGS_INIT;                                     \
        HERMES__ARG(&e_, A1);                                                  \
        HERMES__ARG(&e_, A2);                                                  \
        HERMES__ARG(&e_, A3);                                                  \
        int rc_ = e_.failed ? (int)HERMES_ENOMEM                               \
                  : NAME##__memo.fn                                            \
                      ? (int)hermes_invalidate(NAME##__memo.fn, e_.data,       \
                                               e_.len, &a_)                    \
                      : (int)HERMES_EINVAL;                                    \
        hermes_args_free(&e_);                                                 \
        return rc_;                                                            \
    }                                                                          \
    static RT NAME(T1 A1, T2 A2, T3 A3)                                        \
    {                                                                          \
        NAME##__args a_ = {A1, A2, A3};                                        \
        hermes_args e_ = HERMES_ARGS_INIT;                                     \
        RT r_;                                                                 \
        HERMES__ARG(&e_, A1);                                                  \
        HERMES__ARG(&e_, A2);                                                  \
        HERMES__ARG(&e_, A3);                                                  \
        return NAME##__run(&e_, &a_, &r_) ? r_ : NAME##__compute(A1, A2, A3);  \
    }                                                                          \
    static RT NAME##__compute(T1 A1, T2 A2, T3 A3)

/* Attaches a HERMES_FUNCn function to handle h; options as designated
 * initializers of hermes_fn_options.  Returns a hermes_rc; on failure (e.g.
 * HERMES_EEXIST) an earlier registration stays in place.  hermes_close(h)
 * detaches it again, after which the function computes directly. */
#define HERMES_REGISTER(h, NAME, ...)                                          \
    hermes__register((h), #NAME, &(const hermes_fn_options){__VA_ARGS__},      \
                     &NAME##__memo.fn)

/* As HERMES_REGISTER with a custom key function KEYFN. */
#define HERMES_REGISTER_KEYED(h, NAME, KEYFN, ...)                             \
    (NAME##__memo.key = (KEYFN),                                               \
     hermes__register(                                                         \
         (h), #NAME,                                                           \
         &(const hermes_fn_options){.key = NAME##__keythunk, __VA_ARGS__},     \
         &NAME##__memo.fn))

#ifdef __cplusplus
}
#endif

#endif /* HERMES_HERMES_H */
