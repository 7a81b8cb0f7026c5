/* debug.h — test-only switches of the core, defined in src/tape.c. They let a
 * test prove that it would catch a broken kernel; programs never call them. */
#ifndef KL_DEBUG_H
#define KL_DEBUG_H
#include "klua.h"

/* KL_CDEF_BEGIN */
/* Multiplies every input gradient that op op_id's backward produces by factor,
 * on every tape, until called again; op_id -1 (or any id outside the registry)
 * turns it off. The gradient check's mutation run uses it to show that a
 * backward 0.5% off fails (tests/gradcheck_spec.lua). */
void kl_debug_mutate_backward(int op_id, double factor);
/* KL_CDEF_END */

#endif
