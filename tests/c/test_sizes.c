/* test_sizes.c: size arithmetic never overflows (issue 17).
 *
 * Every tensor keeps the product of its sizes (a zero size counting as 1) at
 * most 2^40, so element counts, strides and byte counts fit int64_t. Before
 * this was enforced, shapes whose product wrapped were accepted: zero-element
 * tensors with huge other sizes overflowed in the stride computation (signed
 * overflow, UBSan), and an expanded 2^33 x 2^33 view reported 0 elements, so
 * sum() returned 0. Each case here failed (or tripped UBSan) before. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "lgt.h"
#include "lg_idx.h"
#include "lg_safetensors.h"

#define T40 (INT64_C(1) << 40)

static void test_size_mul(void)
{
  int64_t r = -7;
  CHECK(lg_size_mul(3, 4, &r) == 0 && r == 12);
  CHECK(lg_size_mul(0, T40, &r) == 0 && r == 0);
  CHECK(lg_size_mul(T40, 1, &r) == 0 && r == T40);
  r = -7;
  CHECK(lg_size_mul(T40, 2, &r) == -1 && r == -7);             /* over the limit */
  CHECK(lg_size_mul(INT64_C(1) << 62, 4, &r) == -1);           /* wraps int64 */
  CHECK(lg_size_mul(INT64_MAX, INT64_MAX, &r) == -1);
  CHECK(lg_size_mul(-1, 2, &r) == -1);
  int64_t n = -1, s1[3] = {0, T40, T40}, s2[2] = {T40, 1}, s3[2] = {2, -3};
  CHECK(lg_shape_check("t", 2, s2, &n) == 0 && n == T40);
  CHECK(lg_shape_check("t", 0, NULL, &n) == 0 && n == 1);
  CHECK(lg_shape_check("t", 3, s1, &n) == -1);
  CHECK(strstr(lg_last_error(), "t: shape 0x1099511627776x1099511627776 is too large") != NULL);
  CHECK(lg_shape_check("t", 2, s3, &n) == -1);
  CHECK(strstr(lg_last_error(), "negative size -3") != NULL);
  CHECK(lg_shape_check("t", LG_MAXDIM + 1, s1, &n) == -1);
}

static void test_creation(void)
{
  int64_t z[3] = {0, T40, T40}, big[2] = {INT64_C(1) << 32, INT64_C(1) << 32};
  FAILS(lg_zeros(3, z), "zeros: shape 0x1099511627776x1099511627776 is too large");
  FAILS(lg_ones(2, big), "ones: shape 4294967296x4294967296 is too large");
  FAILS(lg_empty(3, z), "empty: shape");
  FAILS(lg_randn(NULL, 3, z), "randn: shape");
  FAILS(lg_rand(NULL, 3, z), "rand: shape");
  FAILS(lg_full(3, z, 1), "full: shape");
  FAILS(lg_eye(0, INT64_C(1) << 62), "eye: shape 0x4611686018427387904");
  /* zero-element tensors with modest sizes still work */
  int64_t ok[3] = {0, 1 << 20, 1 << 20};
  lg_tensor *t = OK(lg_zeros(3, ok));
  if (t) {
    CHECK(lg_numel(t) == 0);
    CHECK(t->stride[0] == INT64_C(1) << 40 && t->stride[2] == 1);
    lg_release(t);
  }
}

static void test_views(void)
{
  int64_t one[2] = {1, 1}, e[2] = {INT64_C(1) << 33, INT64_C(1) << 33};
  lg_tensor *a = OK(lg_ones(2, one));
  /* the element count used to wrap to 0: sum() returned 0 */
  FAILS(lg_expand(a, 2, e), "expand: shape 8589934592x8589934592 is too large");
  int64_t e3[3] = {0, INT64_C(1) << 62, 4};
  FAILS(lg_expand(a, 3, e3), "expand: shape 0x4611686018427387904x4 is too large");
  int64_t fine[2] = {1 << 20, 1 << 20};
  lg_tensor *v = OK(lg_expand(a, 2, fine));
  if (v) { CHECK(lg_numel(v) == INT64_C(1) << 40); lg_release(v); }

  int64_t zs[1] = {0};
  lg_tensor *z = OK(lg_zeros(1, zs));
  /* 2^32 * 2^32 wrapped to 0 and matched the 0 elements of z */
  int64_t r1[2] = {INT64_C(1) << 32, INT64_C(1) << 32}, r2[3] = {0, T40, T40};
  FAILS(lg_reshape(z, 2, r1), "reshape: shape 4294967296x4294967296 is too large");
  FAILS(lg_reshape(z, 3, r2), "reshape: shape 0x1099511627776x1099511627776 is too large");
  FAILS(lg_view(z, 3, r2), "view: shape");
  int64_t r3[3] = {0, T40, -1};   /* inferred size 0 is ambiguous: an error either way */
  CHECK(lg_reshape(z, 3, r3) == NULL);
  int64_t r4[2] = {0, 1 << 20};
  lg_tensor *w = OK(lg_reshape(z, 2, r4));
  lg_release(w);
  /* -1 infers the full 2^40 of an expanded view */
  lg_tensor *b = OK(lg_expand(a, 2, fine));
  lg_tensor *flat = b ? OK(lg_reshape(b, 1, (int64_t[]){-1})) : NULL;
  if (flat) { CHECK(lg_numel(flat) == INT64_C(1) << 40); lg_release(flat); }
  lg_release(b);

  /* slicing with a huge step: (end - start + step - 1) overflowed */
  lg_tensor *c = OK(lg_arange(0, 5, 1));
  lg_tensor *sl = OK(lg_slice(c, 0, 1, 5, INT64_MAX));
  if (sl) {
    CHECK(sl->shape[0] == 1);
    CHECK(lg_get(sl, (int64_t[]){0}) == 1.0f);
    lg_release(sl);
  }
  sl = OK(lg_slice(c, 0, 0, 5, 2));
  if (sl) { CHECK(sl->shape[0] == 3 && sl->stride[0] == 2); lg_release(sl); }
  lg_release(c);

  /* cat of many empty tensors whose concatenated size passes the limit */
  int64_t half[2] = {0, INT64_C(1) << 39};
  lg_tensor *h = OK(lg_zeros(2, half));
  lg_tensor *hs[3] = {h, h, h};
  FAILS(lg_cat(3, hs, 1), "cat");
  lg_release(h);
  lg_release(z);
  lg_release(a);
}

/* A 16-byte IDX file: float32, 3 dims 0 x (2^32-1) x (2^32-1), no data. */
static void test_idx_header(void)
{
  unsigned char b[16] = {0, 0, 0x0D, 3, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
  lgt_put_file(lgt_tmp("zero.idx"), b, sizeof b);
  FAILS(lg_idx_read(lgt_tmp("zero.idx")), "zero.idx: shape 0x4294967295x4294967295 is too large");
  /* the same with a small size still loads as an empty tensor */
  unsigned char c[16] = {0, 0, 0x0D, 3, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 4};
  lgt_put_file(lgt_tmp("zero-ok.idx"), c, sizeof c);
  lg_tensor *t = OK(lg_idx_read(lgt_tmp("zero-ok.idx")));
  if (t) { CHECK(lg_numel(t) == 0 && t->shape[2] == 4); lg_release(t); }
}

static void put_st(const char *path, const char *json)
{
  size_t n = strlen(json);
  unsigned char len8[8];
  for (int k = 0; k < 8; k++) len8[k] = (unsigned char)((uint64_t)n >> (8 * k));
  FILE *f = fopen(path, "wb");
  CHECK(f != NULL);
  if (!f) return;
  fwrite(len8, 1, 8, f);
  fwrite(json, 1, n, f);
  fclose(f);
}

static void test_safetensors_header(void)
{
  put_st(lgt_tmp("zero.st"), "{\"a\":{\"dtype\":\"F32\",\"shape\":[0,1099511627776,1099511627776],"
                         "\"data_offsets\":[0,0]}}");
  lg_st *st = lg_st_read(lgt_tmp("zero.st"));
  CHECK(st == NULL);
  CHECK(strstr(lg_last_error(), "tensor 'a': shape 0x1099511627776x1099511627776 is too large"));
  lg_st_free(st);
  put_st(lgt_tmp("zero-ok.st"), "{\"a\":{\"dtype\":\"F32\",\"shape\":[0,3],\"data_offsets\":[0,0]}}");
  st = lg_st_read(lgt_tmp("zero-ok.st"));
  CHECK(st && st->n == 1 && st->tensors[0]->shape[1] == 3);
  lg_st_free(st);
}

int main(void)
{
  if (lgt_tmpdir_make("test_sizes") != 0) return 1;
  LGT_RUN(test_size_mul);
  LGT_RUN(test_creation);
  LGT_RUN(test_views);
  LGT_RUN(test_idx_header);
  LGT_RUN(test_safetensors_header);
  lgt_tmpdir_remove();
  return lgt_finish();
}
