/*
 * The plugin loader: finds a backend by name or path, opens it with
 * libltdl and checks its descriptor against the ABI this core speaks.
 */
#ifndef HERMES_CORE_LOADER_H
#define HERMES_CORE_LOADER_H

#include <stdbool.h>
#include <stddef.h>

#include <hermes/backend.h>
#include <hermes/hermes.h>

typedef struct hm_plugin {
    void *dl;                   /* lt_dlhandle, NULL for the built-in dict */
    const hermes_backend *desc; /* &copy once validated */
    char *path;                 /* the file loaded, or "(built-in)" */
    bool builtin; /* the dict built into the library ("dict"), not a file
                     or a linked descriptor */
    /* The plugin's descriptor as far as its struct_size goes, zero-filled
     * beyond: the core reads only this, never past what the plugin has. */
    hermes_backend copy;
} hm_plugin;

/*
 * Loads the backend spec: "dict" is the built-in dict backend; any other
 * name without a '/' is searched as NAME.la then NAME.so in each directory
 * of plugin_path (colon-separated, may be NULL), then of the environment's
 * HERMES_PLUGIN_PATH, then the installed plugin directory; a spec with a
 * '/' is loaded from that file.  A spec ending in '/', naming a directory
 * or anything but a regular file, and the names "." and "..", are refused
 * before libltdl sees them (it aborts on an empty file name).  Errors
 * (HERMES_EPLUGIN, message in err):
 *   not found        "plugin 'x' not found; looked in: d1/x.{la,so}, ..."
 *   not a file       "PATH: cannot load: is a directory, not a plugin file"
 *   open failure     "PATH: cannot load: <dlopen's reason>"
 *   no entry symbol  "PATH: no hermes_backend_entry symbol: not a Hermes
 *                    plugin"
 *   entry NULL       "PATH: hermes_backend_entry returned NULL"
 *   major mismatch   "PATH: ABI major N, this core speaks M"
 *   newer minor      "PATH: ABI 1.N is newer than this core's 1.M (upgrade
 *                    Hermes, or rebuild the plugin against this SDK)"
 *   too small        "PATH: descriptor struct_size N smaller than ABI 1.0's M"
 *   too large        "PATH: descriptor struct_size N larger than ABI 1.M's
 *                    K, although it says ABI 1.M"
 *   NULL operation   "PATH: mandatory operation 'get' is NULL"
 *   bad name         "PATH: descriptor has no valid name"
 *   no version       "PATH: descriptor has no version"
 *   cap without op   "PATH: declares HERMES_CAP_SCAN but operation 'scan' is
 *                    NULL"
 * Thread-safe: libltdl's global state is guarded by a mutex.
 */
hermes_rc hm_plugin_load(const char *spec, const char *plugin_path,
                         hm_plugin *out, char *err, size_t errlen);

/* Validates a descriptor against the extension rule of <hermes/backend.h>
 * and the duties of a 1.x descriptor (the errors above, from "entry NULL"
 * on). */
hermes_rc hm_plugin_check(const hermes_backend *d, const char *path, char *err,
                          size_t errlen);

/* Validates d and keeps it in out: out->copy holds its struct_size bytes,
 * zero-filled beyond, and out->desc points at the copy.  out->path is set
 * to a copy of path unless already set.  For the built-in dict and a
 * descriptor linked into the application (hermes_open_with). */
hermes_rc hm_plugin_adopt(const hermes_backend *d, const char *path,
                          hm_plugin *out, char *err, size_t errlen);

void hm_plugin_unload(hm_plugin *p);

/* Whether loading name would find a file (or the built-in dict): 1 when
 * NAME.la or NAME.so is in a directory of the search path, 0 when not, -1
 * when memory runs out.  Nothing is loaded. */
int hm_plugin_exists(const char *name, const char *plugin_path);

/* The lock that serializes libltdl, for the fork handlers (fork.c). */
void hm_loader_lock(void);
void hm_loader_unlock(void);

/* Calls cb for every plugin file found on the search path (a directory
 * named twice is walked once; NAME.so is skipped where NAME.la sits next
 * to it, as libtool installs them), loaded and checked; err is NULL when it
 * loaded, or the reason it did not.  The built-in dict comes first.
 * shadowed is set for a file that loading by name would never pick: its
 * name came earlier on the path, or is "dict", which always means the
 * built-in.  desc (NULL when err is set) is valid only during the call,
 * and its description may be NULL. */
typedef void (*hm_plugin_list_cb)(void *arg, const char *path,
                                  const hermes_backend *desc, const char *err,
                                  int shadowed);
void hm_plugin_list(const char *plugin_path, hm_plugin_list_cb cb, void *arg);

#endif
