/* lga_draw.h: a few drawing primitives for plots (points, lines, rectangles,
 * text) into float images (C,H,W), so that no plotting library is needed.
 * Part of luagan_apps, the application code beside the runtime. */
#ifndef LGA_DRAW_H
#define LGA_DRAW_H

#include "lg_tensor.h"

/* Drawing into an image in place: img (C,H,W), any strides ---------------
 * Coordinates are in pixels, x right, y down, pixel (i,j) covering
 * [j, j+1) x [i, i+1). color has C entries; alpha in [0,1] blends
 * (1 = opaque). Shapes outside the image are clipped, whatever their
 * coordinates (clamped in floating point before any conversion, so 1e30 is
 * simply off the canvas) and the work is bounded by the canvas size.
 * Non-finite coordinates, widths and radii are errors. 0, or -1 with error. */
/* pts: (N,2) pixel coordinates (x,y); a filled disc of radius r per point.
 * Points with a non-finite coordinate are skipped (a diverged sample). */
int lga_draw_points(lg_tensor *img, const lg_tensor *pts, float r, const float *color, float alpha);
/* A segment of the given width (>= 1 px): every pixel whose centre lies
 * within width/2 of it. */
int lga_draw_line(lg_tensor *img, float x0, float y0, float x1, float y1, float width,
                 const float *color);
/* Filled rectangle [x0,x1) x [y0,y1). */
int lga_draw_rect(lg_tensor *img, float x0, float y0, float x1, float y1, const float *color);
/* ASCII text (stb_easy_font, ~6x12 px per character at scale 1) with its top
 * left corner at (x,y); returns the width in pixels through *w if non-NULL.
 * scale in 1..LGA_TEXT_MAX_SCALE, text at most LGA_TEXT_MAX_LEN bytes. */
#define LGA_TEXT_MAX_SCALE 1024
#define LGA_TEXT_MAX_LEN 65536
int lga_draw_text(lg_tensor *img, float x, float y, const char *text, int scale,
                 const float *color, int *w);
/* Width in pixels of text at scale 1, or -1 with error (text too long). */
int lga_text_width(const char *text);

#endif
