/* lg_kernels_conv.h: private to lg_im2col.c, lg_conv.c and the C tests: the
 * table form of im2col/col2im (see lg_im2col.c). */
#ifndef LG_KERNELS_CONV_H
#define LG_KERNELS_CONV_H

#include <stdint.h>
#include "lg_nn.h"

/* Planes of up to this many floats (H*W + 1) take the table form; larger
 * ones the direct lg_im2col/lg_col2im (the plane is copied to the stack). */
#define LG_IM2COL_MAX_PLANE 16384

/* Entries of the index table for geometry g (KH*KW*OH*OW), 0 when the plane
 * is too large for the table form. */
int64_t lg_im2col_table_size(const lg_conv_geom *g);
/* idx: (KH*KW, OH*OW) source offsets within one (H,W) plane, H*W for padding. */
void lg_im2col_table(const lg_conv_geom *g, int32_t *idx);
/* As lg_im2col, with the table of g. */
void lg_im2col_tab(const float *x, const lg_conv_geom *g, const int32_t *idx, float *col,
                   int64_t ldc);
/* int32 entries of the col2im (gather) table for g and row pitch ldc, 0
 * when the table form does not apply. */
int64_t lg_col2im_table_size(const lg_conv_geom *g, int64_t ldc);
void lg_col2im_table(const lg_conv_geom *g, int64_t ldc, int32_t *tab);
/* As lg_col2im, with tab from lg_col2im_table(g, ldc) (same ldc). */
void lg_col2im_tab(const float *col, const lg_conv_geom *g, const int32_t *tab, int64_t ldc,
                   float *x);
/* The portable loop behind lg_col2im_tab, which uses AVX-512 gathers when
 * the CPU has them (lg_col2im_tab_fast() != 0); both give identical sums. */
void lg_col2im_tab_scalar(const float *col, const lg_conv_geom *g, const int32_t *tab,
                          int64_t ldc, float *x);
int lg_col2im_tab_fast(void);

/* AVX-512 permute forms for small maps (OW <= 16, W <= 32; col2im also
 * H <= 64; _ok() is 0
 * without AVX-512), for g with C == 1 and m samples at once: x holds m
 * planes xs floats apart, sample n's columns are [n*P, (n+1)*P) of the
 * KH*KW rows of col (pitch ldc). Same results as lg_im2col and
 * lg_col2im_tab (bit for bit). */
int lg_im2col_perm_ok(const lg_conv_geom *g);
int lg_col2im_perm_ok(const lg_conv_geom *g);
void lg_im2col_perm(const float *x, int64_t xs, int64_t m, const lg_conv_geom *g, float *col,
                    int64_t ldc);
void lg_col2im_perm(const float *col, int64_t m, const lg_conv_geom *g, int64_t ldc, float *x,
                    int64_t xs);

#endif
