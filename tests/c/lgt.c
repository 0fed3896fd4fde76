/* lgt.c: the tiny C test harness (see lgt.h). */
#include <string.h>
#include <stdlib.h>
#include "lgt.h"

int lgt_failed_checks = 0;
static int passed, failed;

void lgt_run(const char *name, void (*fn)(void))
{
  int before = lgt_failed_checks;
  fn();
  if (lgt_failed_checks == before) { passed++; printf("ok   %s\n", name); }
  else { failed++; printf("FAIL %s\n", name); }
  fflush(stdout);
}

int lgt_finish(void)
{
  printf("%d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}

lg_tensor *lgt_ok(lg_tensor *t, const char *expr, const char *file, int line)
{
  if (!t) {
    lgt_failed_checks++;
    fprintf(stderr, "%s:%d: %s failed: %s\n", file, line, expr, lg_last_error());
    exit(1);   /* later checks would dereference NULL */
  }
  return t;
}

void lgt_fails(int failed_, const char *expr, const char *substr, const char *file, int line)
{
  if (!failed_) {
    lgt_failed_checks++;
    fprintf(stderr, "%s:%d: %s succeeded, expected an error with '%s'\n", file, line, expr, substr);
  } else if (!strstr(lg_last_error(), substr)) {
    lgt_failed_checks++;
    fprintf(stderr, "%s:%d: %s: error '%s' does not mention '%s'\n", file, line, expr,
            lg_last_error(), substr);
  }
}

lg_tensor *lgt_randn(lg_gen *g, int ndim, const int64_t *shape)
{
  lg_tensor *t = lg_empty(ndim, shape);
  int64_t n = lg_numel(t);
  float *p = lg_data(t);
  for (int64_t i = 0; i < n; i++) p[i] = (float)lg_gen_normal(g);
  return t;
}

double lgt_maxdiff(const lg_tensor *a, const lg_tensor *b)
{
  if (!lg_same_shape(a, b)) return INFINITY;
  int64_t n = lg_numel(a);
  float *x = malloc(sizeof(float) * (n ? n : 1)), *y = malloc(sizeof(float) * (n ? n : 1));
  lg_read(a, x);
  lg_read(b, y);
  double m = 0;
  for (int64_t i = 0; i < n; i++) {
    double d = fabs((double)x[i] - y[i]) / (1 + fabs((double)y[i]));
    if (isnan(x[i]) != isnan(y[i])) d = INFINITY;
    if (d > m) m = d;
  }
  free(x);
  free(y);
  return m;
}

/* ---- scratch files ------------------------------------------------------- */
char lgt_tmpdir[256];

int lgt_tmpdir_make(const char *name)
{
  snprintf(lgt_tmpdir, sizeof lgt_tmpdir, "/tmp/lg_%s.XXXXXX", name);
  if (!mkdtemp(lgt_tmpdir)) { perror("mkdtemp"); return -1; }
  return 0;
}

const char *lgt_tmp(const char *name)
{
  static char buf[4][512];
  static int k;
  k = (k + 1) % 4;
  snprintf(buf[k], sizeof buf[k], "%s/%s", lgt_tmpdir, name);
  return buf[k];
}

void lgt_put_file(const char *path, const void *data, size_t n)
{
  FILE *f = fopen(path, "wb");
  CHECK(f != NULL);
  if (!f) return;
  CHECK(fwrite(data, 1, n, f) == n);
  fclose(f);
}

unsigned char *lgt_get_file(const char *path, size_t *n)
{
  FILE *f = fopen(path, "rb");
  if (!f) { *n = 0; return NULL; }
  fseek(f, 0, SEEK_END);
  long len = ftell(f);
  rewind(f);
  unsigned char *b = malloc(len + 1);
  *n = b ? fread(b, 1, len, f) : 0;
  fclose(f);
  return b;
}

void lgt_tmpdir_remove(void)
{
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", lgt_tmpdir);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", lgt_tmpdir);
}
