/* lg_image.h: images in and out (PNG via stb_image_write, PNG and JPEG via
 * libpng and libjpeg-turbo), resizing and sample grids. Drawing for plots is
 * in apps/lga_draw.h.
 *
 * Images are float tensors (C,H,W), C = 1 (gray), 3 (RGB) or 2/4 (with alpha).
 * Functions return a new reference / 0, or NULL / -1 with the error set,
 * naming the function and the file or shapes.
 */
#ifndef LG_IMAGE_H
#define LG_IMAGE_H

#include <stdio.h>
#include "lg_tensor.h"

/* Write a PNG. t: (C,H,W) with C in 1..4, or (H,W) for gray. Values are
 * mapped from [lo,hi] to 0..255, rounded and clamped (NaN -> 0). Written
 * atomically (temp + rename). */
int lg_png_write(const char *path, const lg_tensor *t, float lo, float hi);

/* Read a PNG or JPEG file (libpng, libjpeg-turbo) -> (C,H,W) floats in
 * [0,255]. channels = 0 keeps the file's channel count, 1..4 converts (as
 * stb_image did: gray = (77 R + 150 G + 29 B) / 256, alpha added as 255).
 * Files of more than max_pixels pixels (width x height) are refused from
 * their header, before decoding; max_pixels = 0 means lg_image_max_pixels().
 * Corrupt or truncated data is an error, never a partly gray image. */
#define LG_IMAGE_MAX_PIXELS (INT64_C(1) << 26)   /* the default limit: 8192 x 8192 */
#define LG_IMAGE_PIXELS_CAP (INT64_C(1) << 38)   /* the most a limit may allow (x4 channels <= 2^40) */
lg_tensor *lg_image_read(const char *path, int channels);
lg_tensor *lg_image_read_max(const char *path, int channels, int64_t max_pixels);
/* The decoder behind both, reading f from its start (any stream: a file, or
 * fmemopen'ed bytes for a fuzz harness); path only names it in errors.
 * max_pixels must be given (1..LG_IMAGE_PIXELS_CAP); f stays open. */
lg_tensor *lg_image_read_stream(FILE *f, const char *path, int channels, int64_t max_pixels);
/* The default limit: LUAGAN_MAX_IMAGE_PIXELS from the environment when set
 * (an integer in 1..LG_IMAGE_PIXELS_CAP), else LG_IMAGE_MAX_PIXELS; -1 with
 * error for a malformed value. */
int64_t lg_image_max_pixels(void);

/* Bilinear resize with half-pixel centres (PyTorch align_corners=False);
 * when shrinking, the triangle filter widens with the scale (antialiasing,
 * as PIL's BILINEAR and PyTorch antialias=True do) so small outputs do not
 * alias. x: (H,W), (C,H,W) or (N,C,H,W) -> same leading dims, (oh,ow). */
lg_tensor *lg_resize_bilinear(const lg_tensor *x, int64_t oh, int64_t ow);

/* Tile images into one grid like torchvision's make_grid.
 * x: (N,C,H,W) -> (C, rows*(H+pad)+pad, cols*(W+pad)+pad) with
 * cols = min(nrow, N), rows = ceil(N/cols); values mapped from [lo,hi] to
 * [0,1] and clamped; the padding is pad_value. */
lg_tensor *lg_image_grid(const lg_tensor *x, int nrow, int padding, float lo, float hi,
                         float pad_value);

#endif
