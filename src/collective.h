/* collective.h — how the all_reduce_sum op (src/ops/collective.c) reaches
 * MPI without libklua linking it: klua.distribution hands the core the
 * allreduce of libklua_mpi.so (src/dist/) once the process has joined an MPI
 * job. Without it the op is the identity (one process). */
#ifndef KL_COLLECTIVE_H
#define KL_COLLECTIVE_H
#include <stdint.h>

/* KL_CDEF_BEGIN */
/* In-place sum over the processes of count floats (dtype 0, op 0), as
 * kl_mpi_allreduce; returns 0, or < 0 with a message in message_fn(). */
typedef int (*kl_allreduce_fn)(void *buf, int64_t count, int dtype, int op);
typedef const char *(*kl_message_fn)(void);
void kl_set_allreduce(kl_allreduce_fn fn, kl_message_fn message_fn);
/* KL_CDEF_END */

#endif
