/* lg_atomic.c: temp file + fsync + rename (see lg_atomic.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "lg_atomic.h"
#include "lg_tensor.h"

static void lg_afile_free(lg_afile *a)
{
  free(a->path);
  free(a->tmp);
  a->path = a->tmp = NULL;
  a->f = NULL;
}

int lg_atomic_open(lg_afile *a, const char *path, const char *who)
{
  memset(a, 0, sizeof *a);
  a->who = who;
  if (!path || !*path) { lg_error("%s: empty file name", who); return -1; }
  size_t n = strlen(path) + 32;
  a->path = strdup(path);
  a->tmp = malloc(n);
  if (!a->path || !a->tmp) {
    lg_afile_free(a);
    lg_error("%s: %s: out of memory", who, path);
    return -1;
  }
  snprintf(a->tmp, n, "%s.tmp.%ld", path, (long)getpid());
  a->f = fopen(a->tmp, "wb");
  if (!a->f) {
    lg_error("%s: %s: cannot create %s: %s", who, path, a->tmp, strerror(errno));
    lg_afile_free(a);
    return -1;
  }
  return 0;
}

void lg_atomic_abort(lg_afile *a)
{
  if (a->f) fclose(a->f);
  if (a->tmp) remove(a->tmp);
  lg_afile_free(a);
}

/* fsync the directory holding path so the rename itself survives a crash;
 * best effort: some file systems refuse to open directories. */
static void lg_sync_dir(const char *path)
{
  char *dir = strdup(path);
  if (!dir) return;
  char *slash = strrchr(dir, '/');
  if (!slash) strcpy(dir, ".");
  else if (slash == dir) dir[1] = 0;
  else *slash = 0;
  int fd = open(dir, O_RDONLY | O_DIRECTORY);
  if (fd >= 0) { fsync(fd); close(fd); }
  free(dir);
}

int lg_atomic_commit(lg_afile *a)
{
  int err = 0;
  const char *what = NULL;
  if (fflush(a->f) != 0 || ferror(a->f)) { err = errno; what = "write failed"; }
  else if (fsync(fileno(a->f)) != 0) { err = errno; what = "fsync failed"; }
  int cerr = fclose(a->f);
  a->f = NULL;
  if (!what && cerr != 0) { err = errno; what = "close failed"; }
  if (!what && rename(a->tmp, a->path) != 0) { err = errno; what = "rename failed"; }
  if (what) {
    lg_error("%s: %s: %s: %s (the previous file, if any, is unchanged)", a->who, a->path,
             what, err ? strerror(err) : "I/O error");
    lg_atomic_abort(a);
    return -1;
  }
  lg_sync_dir(a->path);
  lg_afile_free(a);
  return 0;
}
