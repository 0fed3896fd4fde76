/* lg_simd.h: private to the runtime's kernel files.
 *
 * LG_CLONES builds a function also for AVX2 and AVX-512 (GCC function
 * multiversioning); the CPU picks one when the library loads. For kernels that
 * are compute-bound in the baseline SSE2 build (divisions, square roots, tanh,
 * float->double conversions); the wider loops cost nothing on memory-bound ones.
 */
#ifndef LG_SIMD_H
#define LG_SIMD_H

#define LG_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))

#endif
