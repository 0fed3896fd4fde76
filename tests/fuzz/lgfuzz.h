/* lgfuzz.h: what the three fuzz harnesses share (docs/fuzzing.md).
 *
 * The readers under test take a path (they fopen/gzopen it and fstat it for a
 * regular file), so each harness writes its input into one anonymous
 * in-memory file made at start and passes "/proc/self/fd/N": every open of
 * that path is a new open file description reading from byte 0, the file is
 * regular, and no run touches the disk. Where memfd_create is refused (old
 * kernels, seccomp) an unlinked temp file in $TMPDIR does the same job.
 *
 * After each run the harness checks the runtime's own books: every tensor was
 * released (live bytes back to 0) and a failed read left an error message,
 * then it trims the caching allocator so that LeakSanitizer and ASan's
 * use-after-free checks see every storage really freed. */
#ifndef LGFUZZ_H
#define LGFUZZ_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include "lg_tensor.h"

typedef struct {
  int fd;
  char path[64];
} lgf_file;

/* Make the in-memory file once; aborts (a harness bug, not a finding). */
static inline void lgf_file_open(lgf_file *f, const char *name)
{
  f->fd = memfd_create(name, MFD_CLOEXEC);
  if (f->fd < 0) {
    const char *dir = getenv("TMPDIR");
    char tmpl[512];
    snprintf(tmpl, sizeof tmpl, "%s/%s.XXXXXX", dir && *dir ? dir : "/tmp", name);
    f->fd = mkstemp(tmpl);
    if (f->fd < 0) { perror("lgfuzz: memfd_create and mkstemp"); abort(); }
    unlink(tmpl);   /* /proc/self/fd/N still opens it */
  }
  snprintf(f->path, sizeof f->path, "/proc/self/fd/%d", f->fd);
}

/* Replace the file's contents with data[0..size). */
static inline void lgf_file_set(lgf_file *f, const uint8_t *data, size_t size)
{
  if (ftruncate(f->fd, 0) != 0) { perror("lgfuzz: ftruncate"); abort(); }
  size_t done = 0;
  while (done < size) {
    ssize_t k = pwrite(f->fd, data + done, size - done, (off_t)done);
    if (k <= 0) { perror("lgfuzz: pwrite"); abort(); }
    done += (size_t)k;
  }
}

/* Read every element of t, so that ASan sees a storage shorter than the shape
 * claims; the sum is kept in a volatile so the loads stay. */
static inline void lgf_touch(const lg_tensor *t)
{
  static volatile float sink __attribute__((unused));
  const float *d = lg_data(t);
  int64_t n = lg_numel(t);
  float s = 0;
  for (int64_t i = 0; i < n; i++) s += d[i];
  sink = s;
}

/* Start of a run: clear the thread's error message, so that the check below
 * cannot pass on a message left by an earlier run. */
static inline void lgf_begin_run(void) { lg_error("%s", ""); }

/* LGFUZZ_VERBOSE=1 in the environment: say what each input gave (to check
 * that the seeds load: `LGFUZZ_VERBOSE=1 build-fuzz/tests/fuzz/fuzz_idx
 * tests/fuzz/corpus/idx/ *`). */
static inline void lgf_say(const char *reader, const char *what)
{
  static int verbose = -1;
  if (verbose < 0) verbose = getenv("LGFUZZ_VERBOSE") && *getenv("LGFUZZ_VERBOSE") == '1';
  if (verbose) fprintf(stderr, "lgfuzz: %s: %s\n", reader, what);
}

/* A reader gave t (for LGFUZZ_VERBOSE). */
static inline void lgf_say_loaded(const char *reader, const lg_tensor *t)
{
  char shape[160], msg[200];
  snprintf(msg, sizeof msg, "loaded %s", lg_shape_str(t, shape, sizeof shape));
  lgf_say(reader, msg);
}

/* A reader returned NULL: it must have said why (lg_last_error says
 * "unknown error" when nothing set a message). */
static inline void lgf_check_error(const char *reader)
{
  const char *e = lg_last_error();
  if (!e || !*e || strcmp(e, "unknown error") == 0) {
    fprintf(stderr, "lgfuzz: %s failed without an error message\n", reader);
    abort();
  }
  lgf_say(reader, e);
}

/* End of a run: nothing may still hold tensor storage; then give the cached
 * blocks back to the system so that the sanitizers see them freed. */
static inline void lgf_end_run(const char *reader)
{
  if (lg_mem_live_bytes() != 0) {
    fprintf(stderr, "lgfuzz: %s left %zu bytes of tensor storage alive (a leaked "
            "reference)\n", reader, lg_mem_live_bytes());
    abort();
  }
  lg_mem_trim();
}

#endif
