/* A C program on the installed luagan runtime alone (no Lua): the consumer
 * tests/package/test_install.sh builds with find_package(luagan) and with
 * pkg-config. y = sum(x @ w) for x = ones(2x3) and w = 0.5 (3x4): 12;
 * dy/dx = 4 * 0.5 = 2 everywhere. Prints "luagan VERSION: y=12 dx=2". */
#include <stdio.h>
#include <lg_ops.h>

int main(void) {
  int64_t xs[2] = {2, 3}, ws[2] = {3, 4};
  lg_tensor *x = lg_ones(2, xs);          /* 2x3 */
  lg_tensor *w = lg_full(2, ws, 0.5f);    /* 3x4 */
  if (!x || !w) { fprintf(stderr, "consumer: %s\n", lg_last_error()); return 1; }
  x->requires_grad = 1;
  lg_tensor *xw = lg_matmul(x, w);        /* 2x4 */
  lg_tensor *y = xw ? lg_sum(xw, 0, NULL, 0) : NULL;   /* scalar */
  if (!y || lg_backward(1, &y, NULL, 0, 0) != 0) {
    fprintf(stderr, "consumer: %s\n", lg_last_error());
    return 1;
  }
  float dx = lg_data(x->grad)[0];
  printf("luagan %s: y=%g dx=%g\n", LUAGAN_CONSUMER_VERSION, lg_data(y)[0], dx);
  int ok = lg_data(y)[0] == 12.0f && dx == 2.0f;
  lg_release(y);
  lg_release(xw);
  lg_release(w);
  lg_release(x);
  return ok ? 0 : 1;
}
