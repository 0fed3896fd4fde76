/* lgt.h: the tiny test harness of the C runtime tests.
 * Each test file defines main() calling LGT_RUN(fn) for each test function
 * and ends with `return lgt_finish();`, which prints "N passed, N failed". */
#ifndef LGT_H
#define LGT_H

#include <stdio.h>
#include <math.h>
#include "lg_ops.h"

extern int lgt_failed_checks;
int lgt_finish(void);
void lgt_run(const char *name, void (*fn)(void));
#define LGT_RUN(fn) lgt_run(#fn, fn)

#define CHECK(cond) do { if (!(cond)) { lgt_failed_checks++; \
  fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond); } } while (0)
#define CHECK_NEAR(a, b, tol) do { double a_ = (a), b_ = (b); \
  if (!(fabs(a_ - b_) <= (tol) * (1 + fabs(b_)))) { lgt_failed_checks++; \
  fprintf(stderr, "%s:%d: %s = %.9g, expected %s = %.9g (tol %g)\n", __FILE__, __LINE__, \
          #a, a_, #b, b_, (double)(tol)); } } while (0)
/* An op call that must succeed: on NULL prints the runtime error. */
#define OK(expr) lgt_ok((expr), #expr, __FILE__, __LINE__)
/* An op call that must fail with an error message containing `substr`. */
#define FAILS(expr, substr) lgt_fails((expr) == NULL, #expr, substr, __FILE__, __LINE__)

lg_tensor *lgt_ok(lg_tensor *t, const char *expr, const char *file, int line);
void lgt_fails(int failed, const char *expr, const char *substr, const char *file, int line);

/* Random tensor of a shape from the given generator, values in N(0,1). */
lg_tensor *lgt_randn(lg_gen *g, int ndim, const int64_t *shape);
/* Max |a-b| over all elements after broadcasting-free comparison; shapes must match
 * (a mismatch counts as a failure and returns INFINITY). */
double lgt_maxdiff(const lg_tensor *a, const lg_tensor *b);
/* CHECK that a and b have the same shape and agree within tol (relative+absolute). */
#define CHECK_CLOSE(a, b, tol) do { double d_ = lgt_maxdiff((a), (b)); \
  if (!(d_ <= (tol))) { lgt_failed_checks++; fprintf(stderr, \
  "%s:%d: %s vs %s differ by %g (tol %g)\n", __FILE__, __LINE__, #a, #b, d_, (double)(tol)); } } while (0)

/* A scratch directory per test program: lgt_tmpdir_make("name") at the start
 * of main (0 on success), lgt_tmp("file") a path inside it (four rotating
 * buffers, so a call can take two or three), lgt_put_file writes bytes there,
 * lgt_tmpdir_remove() at the end. lgt_tmpdir is the directory itself. */
extern char lgt_tmpdir[256];
int lgt_tmpdir_make(const char *name);
const char *lgt_tmp(const char *name);
void lgt_put_file(const char *path, const void *data, size_t n);
/* The whole file (malloc'ed, the caller frees) and its size; NULL, 0 if absent. */
unsigned char *lgt_get_file(const char *path, size_t *n);
void lgt_tmpdir_remove(void);

#endif
