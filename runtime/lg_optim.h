/* lg_optim.h: optimizer updates, fused per parameter tensor.
 * The Lua optimizers (scripts/luagan/optim.lua) keep the state tensors and
 * call these; each walks the parameter, its gradient and its state once.
 * All tensors must be contiguous and of the parameter's shape; the update
 * never records a graph. Each returns 0 or -1 with the error set. */
#ifndef LG_OPTIM_H
#define LG_OPTIM_H

#include "lg_tensor.h"

/* p -= lr * (g + wd*p) with momentum buffer buf (NULL when momentum == 0):
 * buf = momentum*buf + (1-dampening)*d; d = nesterov ? d + momentum*buf : buf */
int lg_sgd_step(lg_tensor *p, const lg_tensor *g, lg_tensor *buf, float lr, float momentum,
                float dampening, float weight_decay, int nesterov, int first_step);
/* Adam (decoupled = 0: L2 added to the gradient) or AdamW (decoupled = 1).
 * step is the 1-based step count after this update (for bias correction). */
int lg_adam_step(lg_tensor *p, const lg_tensor *g, lg_tensor *m, lg_tensor *v, float lr,
                 float beta1, float beta2, float eps, float weight_decay, int decoupled,
                 int64_t step);
/* RMSprop (Tieleman & Hinton; PyTorch's form, eps outside the sqrt):
 * sq = alpha*sq + (1-alpha)*g^2; p -= lr * g / (sqrt(sq) + eps), with optional
 * momentum buffer buf (NULL when momentum == 0). */
int lg_rmsprop_step(lg_tensor *p, const lg_tensor *g, lg_tensor *sq, lg_tensor *buf, float lr,
                    float alpha, float eps, float weight_decay, float momentum);

#endif
