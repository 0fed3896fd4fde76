/* lg_nn.h: neural-network ops of the luagan runtime (included by lg_ops.h).
 *
 * Same conventions as lg_ops.h: each op validates its arguments at the edge,
 * returns a new reference or NULL with an error naming the op and the shapes,
 * and records a node whose backward formula is written with public ops, so
 * gradients of gradients work (WGAN-GP through a conv critic).
 *
 * The convolution family closes on itself:
 *   conv2d(x, w)              d/dx -> conv_transpose2d(g, w)  d/dw -> conv2d_grad_weight(x, g)
 *   conv_transpose2d(x, w)    d/dx -> conv2d(g, w)            d/dw -> conv2d_grad_weight(g, x)
 *   conv2d_grad_weight(x, g)  d/dx -> conv_transpose2d(g, G)  d/dg -> conv2d(x, G)
 * Linear resampling ops come in adjoint pairs that are each other's
 * derivative (pool_gather/pool_scatter, avg_pool2d/avg_pool2d_backward, ...).
 *
 * Reductions of losses: LG_REDUCE_NONE, LG_REDUCE_MEAN, LG_REDUCE_SUM.
 * Class indices are 0-based integral floats here (the bindings add 1).
 */
#ifndef LG_NN_H
#define LG_NN_H

#include "lg_tensor.h"
#include "lg_rng.h"

enum { LG_REDUCE_NONE = 0, LG_REDUCE_MEAN = 1, LG_REDUCE_SUM = 2 };

/* ---- convolution (lg_conv.c) -------------------------------------------- */
/* x: (N,C,H,W), w: (OC,C,KH,KW), b: (OC) or NULL -> (N,OC,OH,OW),
 * OH = (H + 2ph - dh(KH-1) - 1) / sh + 1 (floor). */
lg_tensor *lg_conv2d(lg_tensor *x, lg_tensor *w, lg_tensor *b, int sh, int sw, int ph, int pw,
                     int dh, int dw);
/* x: (N,C,H,W), w: (C,OC,KH,KW) (PyTorch layout), b: (OC) or NULL -> (N,OC,OH,OW),
 * OH = (H-1)sh - 2ph + dh(KH-1) + oph + 1; output padding must be < stride. */
lg_tensor *lg_conv_transpose2d(lg_tensor *x, lg_tensor *w, lg_tensor *b, int sh, int sw,
                               int ph, int pw, int oph, int opw, int dh, int dw);
/* The weight gradient of conv2d: x: (N,C,H,W), g: (N,OC,OH,OW) with OH, OW
 * the conv2d output size -> (OC,C,KH,KW). */
lg_tensor *lg_conv2d_grad_weight(lg_tensor *x, lg_tensor *g, int kh, int kw, int sh, int sw,
                                 int ph, int pw, int dh, int dw);

/* ---- pooling (lg_pool.c) and upsampling (lg_upsample.c) -------------------- */
/* x: (N,C,H,W) -> (N,C,OH,OW), OH = (H + 2ph - kh) / sh + 1; padding <= k/2.
 * Max pooling ignores padded cells; avg pooling counts them (PyTorch's
 * count_include_pad=True default). */
lg_tensor *lg_max_pool2d(lg_tensor *x, int kh, int kw, int sh, int sw, int ph, int pw);
lg_tensor *lg_avg_pool2d(lg_tensor *x, int kh, int kw, int sh, int sw, int ph, int pw);
/* Adjoint of avg_pool2d: g: (N,C,OH,OW) -> (N,C,H,W). */
lg_tensor *lg_avg_pool2d_backward(lg_tensor *g, int64_t H, int64_t W, int kh, int kw, int sh,
                                  int sw, int ph, int pw);
/* Per-plane gather / scatter-add with flat indices h*W+w into each (H,W)
 * plane. idx: (N,C,OH,OW), or (OH,OW) shared by every plane.
 *   pool_gather  x: (N,C,H,W)   -> (N,C,OH,OW)
 *   pool_scatter g: (N,C,OH,OW) -> (N,C,H,W) (zeros plus g added at idx) */
lg_tensor *lg_pool_gather(lg_tensor *x, const lg_tensor *idx);
lg_tensor *lg_pool_scatter(lg_tensor *g, const lg_tensor *idx, int64_t H, int64_t W);
/* lg_upsample.c: x: (N,C,H,W) -> (N,C,H*sh,W*sw); mode 0 nearest, 1 bilinear (align_corners=false). */
lg_tensor *lg_upsample(lg_tensor *x, int sh, int sw, int mode);
/* Adjoint of bilinear upsampling: g: (N,C,H*sh,W*sw) -> (N,C,H,W). */
lg_tensor *lg_upsample_bilinear_backward(lg_tensor *g, int64_t H, int64_t W, int sh, int sw);

/* ---- normalisation (lg_norm.c) ---------------------------------------------- */
/* x: (N,C,...) normalised per channel (dim 1). running_mean/var: (C) or NULL,
 * updated in place in training mode (running = (1-momentum) running +
 * momentum batch, unbiased variance); weight, bias: (C) or NULL. Eval mode
 * (training 0) needs the running statistics. */
lg_tensor *lg_batch_norm(lg_tensor *x, lg_tensor *running_mean, lg_tensor *running_var,
                         lg_tensor *weight, lg_tensor *bias, int training, float momentum,
                         float eps);
/* Normalise over the last k dims; weight, bias: those k dims, or NULL. */
lg_tensor *lg_layer_norm(lg_tensor *x, int k, lg_tensor *weight, lg_tensor *bias, float eps);
/* x: (N,C,H,W) (or (N,C,...)) per sample and channel; weight, bias (C) or NULL. */
lg_tensor *lg_instance_norm(lg_tensor *x, lg_tensor *weight, lg_tensor *bias, float eps);

/* ---- misc (lg_nnmisc.c) --------------------------------------------------------- */
/* Zero each element with probability p, scale the rest by 1/(1-p); identity
 * (x itself, retained) when !training or p == 0. gen NULL: default generator. */
lg_tensor *lg_dropout(lg_gen *gen, lg_tensor *x, float p, int training);
/* idx: any shape of 0-based integral floats, weight: (V,D) -> (idx shape..., D). */
lg_tensor *lg_embedding(const lg_tensor *idx, lg_tensor *weight);
/* Pad the last two dims (x needs >= 2 dims): left, right, top, bottom >= 0.
 * mode 0 constant (value), 1 reflection (pads < the dim's size). */
lg_tensor *lg_pad(lg_tensor *x, int l, int r, int t, int b, int mode, float value);
/* Adjoint of reflection padding: g: (..., H+t+b, W+l+r) -> (..., H, W). */
lg_tensor *lg_reflect_pad_backward(lg_tensor *g, int l, int r, int t, int b);
lg_tensor *lg_softmax(lg_tensor *x, int dim);
lg_tensor *lg_log_softmax(lg_tensor *x, int dim);

/* ---- losses (lg_loss.c); reduction LG_REDUCE_* ------------------------------------ */
/* Elementwise losses: y broadcasts to x's shape. */
lg_tensor *lg_bce_with_logits(lg_tensor *x, lg_tensor *y, int reduction);
lg_tensor *lg_mse_loss(lg_tensor *x, lg_tensor *y, int reduction);
lg_tensor *lg_l1_loss(lg_tensor *x, lg_tensor *y, int reduction);
/* logp: (N,C) or (N,C,d...) log-probabilities; target: (N) or (N,d...) 0-based
 * class indices -> -logp[n, target[n]], mean over the N*d... entries. */
lg_tensor *lg_nll_loss(lg_tensor *logp, const lg_tensor *target, int reduction);
/* logits: (N,C) or (N,C,d...); target: class indices as for nll_loss, or
 * probabilities of the logits' shape. */
lg_tensor *lg_cross_entropy(lg_tensor *logits, lg_tensor *target, int reduction);

/* ---- kernels on raw pointers (lg_im2col.c, lg_conv.c), for tests and benches ---- */
/* A conv2d geometry: input (C,H,W), kernel (KH,KW), output (OH,OW). */
typedef struct lg_conv_geom {
  int64_t C, H, W, KH, KW, sh, sw, ph, pw, dh, dw, OH, OW;
} lg_conv_geom;

/* x: (C,H,W) -> col: (C*KH*KW, OH*OW) stored with row pitch ldc (>= OH*OW). */
void lg_im2col(const float *x, const lg_conv_geom *g, float *col, int64_t ldc);
/* The adjoint: col: (C*KH*KW, OH*OW) with row pitch ldc -> x: (C,H,W),
 * overwritten with the sum of the columns' contributions. */
void lg_col2im(const float *col, const lg_conv_geom *g, int64_t ldc, float *x);

/* Batched drivers (im2col/col2im + cblas_sgemm). g describes one sample of
 * the conv2d input; Co is the conv2d output channel count. Scratch buffers
 * come from lg_conv_scratch_size (floats). Each returns nothing and cannot fail. */
int64_t lg_conv_chunk(const lg_conv_geom *g, int64_t N);   /* samples per sgemm */
int64_t lg_conv_scratch_size(const lg_conv_geom *g, int64_t N, int64_t Co);
/* x: (N,C,H,W), w: (Co,C,KH,KW), b: (Co) or NULL -> y: (N,Co,OH,OW) */
void lg_conv2d_forward(const float *x, const float *w, const float *b, float *y, int64_t N,
                       int64_t Co, const lg_conv_geom *g, float *scratch);
/* gy: (N,Co,OH,OW), w: (Co,C,KH,KW) -> gx: (N,C,H,W) (conv_transpose2d forward) */
void lg_conv2d_backward_input(const float *gy, const float *w, float *gx, int64_t N,
                              int64_t Co, const lg_conv_geom *g, float *scratch);
/* x: (N,C,H,W), gy: (N,Co,OH,OW) -> gw: (Co,C,KH,KW) */
void lg_conv2d_backward_weight(const float *x, const float *gy, float *gw, int64_t N,
                               int64_t Co, const lg_conv_geom *g, float *scratch);

#endif
