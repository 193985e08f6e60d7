/*
 * The dict backend as a loadable module (plugins/dict.so): the same code
 * the core has built in, behind the plugin entry point.
 */
#include "dict.h"

HERMES_BACKEND_EXPORT const hermes_backend *hermes_backend_entry(void);

const hermes_backend *hermes_backend_entry(void)
{
    return hm_dict_backend();
}
