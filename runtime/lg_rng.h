/* lg_rng.h: the seedable random generator.
 *
 * Philox-free and portable: a PCG-XSH-RR 64/32 stream (O'Neill 2014) whose
 * output depends on integer arithmetic only, so a seed gives the same floats
 * on every machine. Normals come from Box-Muller in double precision.
 */
#ifndef LG_RNG_H
#define LG_RNG_H

#include <stdint.h>

struct lg_gen {
  uint64_t state, inc;
  double spare;        /* second Box-Muller normal */
  int has_spare;
};
typedef struct lg_gen lg_gen;

#define LG_GEN_STATE_WORDS 4 /* state, inc, spare bits, has_spare */

lg_gen *lg_default_gen(void);
void lg_gen_seed(lg_gen *g, uint64_t seed);
void lg_manual_seed(uint64_t seed);                 /* seeds the default generator */
uint32_t lg_gen_u32(lg_gen *g);
double lg_gen_uniform(lg_gen *g);                   /* [0,1), 53 bits */
double lg_gen_normal(lg_gen *g);
uint64_t lg_gen_below(lg_gen *g, uint64_t n);       /* uniform in [0,n), unbiased */
void lg_gen_get_state(const lg_gen *g, uint64_t out[LG_GEN_STATE_WORDS]);
void lg_gen_set_state(lg_gen *g, const uint64_t in[LG_GEN_STATE_WORDS]);

#endif
