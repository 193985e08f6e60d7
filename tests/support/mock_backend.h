/*
 * A backend for core tests: it stores through the dict backend but records
 * every call, can be made to fail, and in strict mode reports each call to
 * cmocka (function_called + check_expected of the batch size), so a test
 * can state exactly which backend calls the core must make.
 */
#ifndef HERMES_TEST_MOCK_BACKEND_H
#define HERMES_TEST_MOCK_BACKEND_H

#include <stdbool.h>
#include <stddef.h>

#include <hermes/backend.h>

typedef struct mock_state mock_state;

/* The descriptor; open() creates a state that mock_current() returns. */
const hermes_backend *mock_backend(void);
/* The descriptor with another max_key_len (e.g. 250, like memcached). */
const hermes_backend *mock_backend_maxkey(unsigned max_key_len);

/* The descriptor of a store that cannot flush by prefix, as memcached:
 * HERMES_CAP_NO_PREFIX_FLUSH, and flush() answers HERMES_BE_UNSUPPORTED
 * (counted) without deleting anything. */
const hermes_backend *mock_backend_no_prefix_flush(void);

/* The state of the most recently opened mock backend. */
mock_state *mock_current(void);

/* Calls counted since open or the last mock_reset_counts(). */
typedef struct mock_counts {
    unsigned get, set, del, lock, unlock, flush;
    size_t get_keys;    /* keys asked for in all gets */
    size_t longest_key; /* longest key seen in any operation */
} mock_counts;

mock_counts mock_get_counts(const mock_state *m);
void mock_reset_counts(mock_state *m);
/* Every operation returns status (e.g. HERMES_BE_IO) while set; 0 clears. */
void mock_fail_all(mock_state *m, int status);
/* While failing, also attach detail to each failure (host->error_detail,
 * which the core shows in hermes_errmsg); NULL stops.  Not copied. */
void mock_fail_detail(mock_state *m, const char *detail);
/* Strict mode: every call does function_called() and check_expected(n). */
void mock_strict(mock_state *m, bool on);
/* The i-th key of the last get(), NUL-terminated (keys up to 255 bytes,
 * the first 8 of a batch), or NULL. */
const char *mock_last_get_key(const mock_state *m, size_t i);
/* Direct access to the store underneath (dict ops and state). */
const hermes_backend *mock_inner(const mock_state *m, void **state);

#endif
