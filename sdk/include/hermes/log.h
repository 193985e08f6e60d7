/*
 * Hermes for C - log levels, shared by the application API (<hermes/hermes.h>,
 * hermes_set_log) and the plugin ABI (<hermes/backend.h>, hermes_host.log).
 * Values are part of ABI 1.0 and never change.
 */
#ifndef HERMES_LOG_H
#define HERMES_LOG_H

enum hermes_log_level {
    HERMES_LOG_ERROR = 0,
    HERMES_LOG_WARN = 1,
    HERMES_LOG_INFO = 2,
    HERMES_LOG_DEBUG = 3
};

#endif /* HERMES_LOG_H */
