/* lg_image.h: images in and out (PNG via stb_image_write, PNG and JPEG via
 * libpng and libjpeg-turbo), resizing, sample grids, and a few drawing primitives for
 * plots (scatter plots of 2D samples, loss curves) so that no plotting
 * library is needed.
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

/* ---- drawing into an image in place: img (C,H,W), any strides ---------------
 * Coordinates are in pixels, x right, y down, pixel (i,j) covering
 * [j, j+1) x [i, i+1). color has C entries; alpha in [0,1] blends
 * (1 = opaque). Shapes outside the image are clipped, whatever their
 * coordinates (clamped in floating point before any conversion, so 1e30 is
 * simply off the canvas) and the work is bounded by the canvas size.
 * Non-finite coordinates, widths and radii are errors. 0, or -1 with error. */
/* pts: (N,2) pixel coordinates (x,y); a filled disc of radius r per point.
 * Points with a non-finite coordinate are skipped (a diverged sample). */
int lg_draw_points(lg_tensor *img, const lg_tensor *pts, float r, const float *color, float alpha);
/* A segment of the given width (>= 1 px): every pixel whose centre lies
 * within width/2 of it. */
int lg_draw_line(lg_tensor *img, float x0, float y0, float x1, float y1, float width,
                 const float *color);
/* Filled rectangle [x0,x1) x [y0,y1). */
int lg_draw_rect(lg_tensor *img, float x0, float y0, float x1, float y1, const float *color);
/* ASCII text (stb_easy_font, ~6x12 px per character at scale 1) with its top
 * left corner at (x,y); returns the width in pixels through *w if non-NULL.
 * scale in 1..LG_TEXT_MAX_SCALE, text at most LG_TEXT_MAX_LEN bytes. */
#define LG_TEXT_MAX_SCALE 1024
#define LG_TEXT_MAX_LEN 65536
int lg_draw_text(lg_tensor *img, float x, float y, const char *text, int scale,
                 const float *color, int *w);
/* Width in pixels of text at scale 1, or -1 with error (text too long). */
int lg_text_width(const char *text);

#endif
