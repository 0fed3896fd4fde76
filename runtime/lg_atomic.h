/* lg_atomic.h: write a file so that a crash never leaves it half written.
 *
 * The content goes to "<path>.tmp.<pid>" in the same directory; commit
 * flushes, fsyncs and renames it over <path> (rename is atomic on POSIX), so
 * readers see either the old file or the whole new one. On any error the
 * temporary is removed and the old file is left untouched. Used by the
 * checkpoint (safetensors), IDX and PNG writers.
 */
#ifndef LG_ATOMIC_H
#define LG_ATOMIC_H

#include <stdio.h>

typedef struct lg_afile {
  FILE *f;          /* write here between open and commit */
  char *path;       /* final name */
  char *tmp;        /* temporary name */
  const char *who;  /* prefix of error messages ("safetensors") */
} lg_afile;

/* Open the temporary for writing; -1 with error "<who>: <path>: ..." */
int lg_atomic_open(lg_afile *a, const char *path, const char *who);
/* Flush, fsync, close and rename; -1 with error (the temporary is removed). */
int lg_atomic_commit(lg_afile *a);
/* Close and remove the temporary (after a failed write). */
void lg_atomic_abort(lg_afile *a);

#endif
