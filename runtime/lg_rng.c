/* lg_rng.c: the seedable generator (see lg_rng.h).
 *
 * PCG-XSH-RR 64/32 exactly as in O'Neill's reference pcg32 (pcg_basic.c):
 * seeding is pcg32_srandom_r(seed, LG_PCG_STREAM), so lg_gen_seed(g, 42)
 * reproduces the published pcg32-demo stream (0xa15c02b7, 0x7b47f409, ...).
 * Everything above the u32 stream is integer arithmetic or IEEE double
 * (uniform) and libm log/cos/sin (normals), so a seed gives the same numbers
 * on every machine.
 *
 * The default generator is a static seeded with 0 on first use, so a program
 * that never calls lg_manual_seed is still deterministic run to run.
 */
#include <math.h>
#include <string.h>
#include "lg_rng.h"

#define LG_PCG_MULT UINT64_C(6364136223846793005)
#define LG_PCG_STREAM UINT64_C(54)   /* fixed stream: the pcg32 demo's, so tests can cite it */

static lg_gen lg_default;
static int lg_default_ready;

lg_gen *lg_default_gen(void)
{
  if (!lg_default_ready) lg_gen_seed(&lg_default, 0);
  return &lg_default;
}

uint32_t lg_gen_u32(lg_gen *g)
{
  uint64_t old = g->state;
  g->state = old * LG_PCG_MULT + g->inc;
  uint32_t xorshifted = (uint32_t)(((old >> 18u) ^ old) >> 27u);
  uint32_t rot = (uint32_t)(old >> 59u);
  return (xorshifted >> rot) | (xorshifted << ((-rot) & 31));
}

void lg_gen_seed(lg_gen *g, uint64_t seed)
{
  /* pcg32_srandom_r(seed, stream) */
  g->state = 0;
  g->inc = (LG_PCG_STREAM << 1u) | 1u;
  lg_gen_u32(g);
  g->state += seed;
  lg_gen_u32(g);
  g->spare = 0;
  g->has_spare = 0;
  if (g == &lg_default) lg_default_ready = 1;
}

void lg_manual_seed(uint64_t seed) { lg_gen_seed(&lg_default, seed); }

double lg_gen_uniform(lg_gen *g)
{
  /* 27 high bits of one draw and 26 of the next make a 53-bit integer: every
   * double k/2^53 in [0,1) is equally likely (the NumPy/MT19937 recipe). */
  uint32_t a = lg_gen_u32(g) >> 5, b = lg_gen_u32(g) >> 6;
  return ((double)a * 67108864.0 + (double)b) * (1.0 / 9007199254740992.0);
}

double lg_gen_normal(lg_gen *g)
{
  if (g->has_spare) {
    g->has_spare = 0;
    return g->spare;
  }
  /* Box-Muller: u1 in (0,1] so log(u1) is finite. */
  double u1 = 1.0 - lg_gen_uniform(g), u2 = lg_gen_uniform(g);
  double r = sqrt(-2.0 * log(u1)), th = 2.0 * M_PI * u2;
  g->spare = r * sin(th);
  g->has_spare = 1;
  return r * cos(th);
}

uint64_t lg_gen_below(lg_gen *g, uint64_t n)
{
  if (n <= 1) return 0;
  if (n <= UINT32_MAX) {
    /* Lemire's multiply-shift with rejection of the biased low part. */
    uint32_t n32 = (uint32_t)n;
    uint64_t m = (uint64_t)lg_gen_u32(g) * n32;
    uint32_t lo = (uint32_t)m;
    if (lo < n32) {
      uint32_t t = (uint32_t)(-n32) % n32;   /* 2^32 mod n */
      while (lo < t) {
        m = (uint64_t)lg_gen_u32(g) * n32;
        lo = (uint32_t)m;
      }
    }
    return m >> 32;
  }
  /* Wide ranges: plain rejection on 64-bit draws (high word first). */
  uint64_t t = (-n) % n;                     /* 2^64 mod n */
  for (;;) {
    uint64_t hi = lg_gen_u32(g);
    uint64_t r = (hi << 32) | lg_gen_u32(g);
    if (r >= t) return r % n;
  }
}

void lg_gen_get_state(const lg_gen *g, uint64_t out[LG_GEN_STATE_WORDS])
{
  uint64_t bits;
  memcpy(&bits, &g->spare, sizeof bits);   /* exact, NaN-safe round trip */
  out[0] = g->state;
  out[1] = g->inc;
  out[2] = bits;
  out[3] = (uint64_t)(g->has_spare != 0);
}

void lg_gen_set_state(lg_gen *g, const uint64_t in[LG_GEN_STATE_WORDS])
{
  g->state = in[0];
  g->inc = in[1] | 1u;                     /* PCG needs an odd increment */
  memcpy(&g->spare, &in[2], sizeof g->spare);
  g->has_spare = in[3] != 0;
  if (g == &lg_default) lg_default_ready = 1;
}
