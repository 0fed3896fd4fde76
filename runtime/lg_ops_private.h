/* lg_ops_private.h: helpers shared by the op files of the runtime; not
 * installed, not for programs that link the runtime. */
#ifndef LG_OPS_PRIVATE_H
#define LG_OPS_PRIVATE_H

#include "lg_ops.h"

/* t itself (retained) when contiguous, else a contiguous copy that records
 * nothing; NULL stays NULL (lg_view.c). */
lg_tensor *lg_dense(const lg_tensor *t);
/* 0 when x is 4-D (N,C,H,W), else -1 with an error naming op (lg_pool.c). */
int lg_check_4d(const char *op, const lg_tensor *x);
/* The parameters of a PERMUTE node: out dim d is input dim perm[d]
 * (lg_view.c; lg_bw_sink in lg_autograd.c recognises a transpose by them). */
typedef struct { int perm[LG_MAXDIM]; } lg_permute_params;

#endif
