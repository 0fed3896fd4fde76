/* lg_atomic.c: exclusive temp file + checked fsync + rename, checked
 * appends, and the removal of stale temporaries (see lg_atomic.h). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "lg_atomic.h"
#include "lg_tensor.h"

#define LG_TMP_SUFFIX_LEN 6     /* random characters after "<path>.tmp.<pid>." */
#define LG_TMP_TRIES 100        /* names tried before giving up on EEXIST */

static void lg_afile_free(lg_afile *a)
{
  free(a->path);
  free(a->tmp);
  a->path = a->tmp = NULL;
  a->f = NULL;
}

/* A 64-bit random number: the kernel's, or (if getrandom is unavailable)
 * the clock mixed with a counter. Unpredictability only keeps others from
 * squatting on the name; O_EXCL is what makes the creation safe. */
static uint64_t lg_random64(void)
{
  static uint64_t counter;
  uint64_t r;
  if (getrandom(&r, sizeof r, GRND_NONBLOCK) == (ssize_t)sizeof r) return r;
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  r = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 30) ^ (++counter * 0x9E3779B97F4A7C15ull);
  r ^= r >> 31;                     /* splitmix64 finaliser */
  r *= 0xBF58476D1CE4E5B9ull;
  r ^= r >> 27;
  return r;
}

static const char lg_alnum[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/* Create a fresh "<path>.tmp.<pid>.<XXXXXX>" exclusively; the fd, or -1 with
 * errno (EEXIST only after LG_TMP_TRIES names were all taken). */
static int lg_create_tmp(const char *path, char *tmp, size_t cap)
{
  for (int tries = 0; tries < LG_TMP_TRIES; tries++) {
    char sfx[LG_TMP_SUFFIX_LEN + 1];
    uint64_t r = lg_random64();
    for (int k = 0; k < LG_TMP_SUFFIX_LEN; k++, r /= 62) sfx[k] = lg_alnum[r % 62];
    sfx[LG_TMP_SUFFIX_LEN] = 0;
    snprintf(tmp, cap, "%s.tmp.%ld.%s", path, (long)getpid(), sfx);
    /* 0666 minus the umask: the file that replaces path gets the mode any
     * new file would (mkstemp's 0600 would make checkpoints private) */
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666);
    if (fd >= 0) return fd;
    if (errno != EEXIST) return -1;
  }
  return -1;
}

int lg_atomic_open(lg_afile *a, const char *path, const char *who)
{
  memset(a, 0, sizeof *a);
  a->who = who;
  if (!path || !*path) { lg_error("%s: empty file name", who); return -1; }
  size_t n = strlen(path) + 48;
  a->path = strdup(path);
  a->tmp = malloc(n);
  if (!a->path || !a->tmp) {
    lg_afile_free(a);
    lg_error("%s: %s: out of memory", who, path);
    return -1;
  }
  int fd = lg_create_tmp(path, a->tmp, n);
  if (fd < 0) {
    lg_error("%s: %s: cannot create a temporary file next to it: %s", who, path, strerror(errno));
    lg_afile_free(a);
    return -1;
  }
  /* held until the close in commit/abort: marks the temporary as live for
   * lg_atomic_clean in other processes; a file system without flock just
   * leaves that to the pid check */
  (void)flock(fd, LOCK_EX | LOCK_NB);
  a->f = fdopen(fd, "wb");
  if (!a->f) {
    int err = errno;
    close(fd);
    remove(a->tmp);
    lg_error("%s: %s: cannot open %s: %s", who, path, a->tmp, strerror(err));
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

/* fsync the directory holding path so the rename itself survives a crash.
 * 0, or an errno. A directory we may not open (no read permission) or a
 * file system that cannot sync directories (EINVAL, ENOTSUP, EROFS) is
 * not an error: the rename is then as durable as that system makes it. */
static int lg_sync_dir(const char *path)
{
  char *dir = strdup(path);
  if (!dir) return ENOMEM;
  char *slash = strrchr(dir, '/');
  if (!slash) strcpy(dir, ".");
  else if (slash == dir) dir[1] = 0;
  else *slash = 0;
  int err = 0;
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    if (fsync(fd) != 0 && errno != EINVAL && errno != ENOTSUP && errno != EROFS) err = errno;
    if (close(fd) != 0 && !err && errno != EINTR) err = errno;
  } else if (errno != EACCES && errno != EPERM) {
    err = errno;
  }
  free(dir);
  return err;
}

int lg_atomic_commit(lg_afile *a)
{
  int err = 0;
  const char *what = NULL;
  if (fflush(a->f) != 0 || ferror(a->f)) { err = errno; what = "write failed"; }
  else if (fsync(fileno(a->f)) != 0) { err = errno; what = "fsync failed"; }
  int cerr = fclose(a->f);
  int cerrno = errno;
  a->f = NULL;
  if (!what && cerr != 0) { err = cerrno; what = "close failed"; }
  if (!what && rename(a->tmp, a->path) != 0) { err = errno; what = "rename failed"; }
  if (what) {
    lg_error("%s: %s: %s: %s (the previous file, if any, is unchanged)", a->who, a->path,
             what, err ? strerror(err) : "I/O error");
    lg_atomic_abort(a);
    return -1;
  }
  err = lg_sync_dir(a->path);
  if (err) {
    lg_error("%s: %s: the new file is in place but syncing its directory failed: %s "
             "(a crash now could bring the previous file back)", a->who, a->path, strerror(err));
    lg_afile_free(a);
    return -1;
  }
  lg_afile_free(a);
  return 0;
}

int lg_atomic_write_file(const char *path, const void *data, size_t n, const char *who)
{
  lg_afile a;
  if (lg_atomic_open(&a, path, who) != 0) return -1;
  if (n > 0 && fwrite(data, 1, n, a.f) != n) {
    lg_error("%s: %s: write failed: %s (the previous file, if any, is unchanged)", who, path,
             strerror(errno));
    lg_atomic_abort(&a);
    return -1;
  }
  return lg_atomic_commit(&a);
}

/* ---- appending ----------------------------------------------------------- */
int lg_append_file(const char *path, const void *data, size_t n, const char *who)
{
  if (!path || !*path) { lg_error("%s: empty file name", who); return -1; }
  int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0666);
  if (fd < 0) {
    lg_error("%s: %s: cannot open for appending: %s", who, path, strerror(errno));
    return -1;
  }
  struct stat st;
  off_t old = fstat(fd, &st) == 0 ? st.st_size : -1;
  const char *p = data;
  size_t left = n;
  int err = 0;
  while (left > 0) {
    ssize_t k = write(fd, p, left);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) { err = k < 0 ? errno : EIO; break; }
    p += k;
    left -= (size_t)k;
  }
  if (err) {
    /* drop the part that made it, so the log never holds half a record */
    int cut = old >= 0 && ftruncate(fd, old) == 0;
    close(fd);
    lg_error("%s: %s: cannot append %zu bytes: %s%s", who, path, n, strerror(err),
             cut ? " (the file is as it was before)" : " (the file may end in a partial record)");
    return -1;
  }
  if (close(fd) != 0 && errno != EINTR) {
    lg_error("%s: %s: close failed after appending: %s", who, path, strerror(errno));
    return -1;
  }
  return 0;
}

/* ---- stale temporaries ----------------------------------------------------- */
/* If name is "<base>.tmp.<pid>" followed by "." and LG_TMP_SUFFIX_LEN
 * alphanumerics (with_sfx) or by nothing (the older form), the length of
 * <base> and the pid; else 0. */
static size_t lg_parse_tmp(const char *name, int with_sfx, long *pid)
{
  size_t len = strlen(name), end = len;
  if (with_sfx) {
    if (len < LG_TMP_SUFFIX_LEN + 1) return 0;
    for (size_t k = len - LG_TMP_SUFFIX_LEN; k < len; k++)
      if (!name[k] || !strchr(lg_alnum, name[k])) return 0;
    end = len - LG_TMP_SUFFIX_LEN - 1;
    if (name[end] != '.') return 0;
  }
  size_t d = end;
  while (d > 0 && name[d - 1] >= '0' && name[d - 1] <= '9') d--;
  if (d == end || end - d > 9) return 0;            /* 1..9 digits: a pid */
  if (d < 6 || memcmp(name + d - 5, ".tmp.", 5) != 0) return 0;
  *pid = strtol(name + d, NULL, 10);
  return d - 5;                                      /* base is non-empty */
}

static int lg_matches(const char *base, int n, const char *const *targets)
{
  for (int i = 0; i < n; i++)
    if (targets[i] && fnmatch(targets[i], base, FNM_PERIOD) == 0) return 1;
  return 0;
}

/* Is name a temporary of one of the targets? Sets *pid. */
static int lg_is_target_tmp(const char *name, int n, const char *const *targets, long *pid)
{
  char base[NAME_MAX + 1];
  for (int form = 1; form >= 0; form--) {
    size_t bl = lg_parse_tmp(name, form, pid);
    if (bl == 0 || bl > NAME_MAX) continue;
    memcpy(base, name, bl);
    base[bl] = 0;
    if (lg_matches(base, n, targets)) return 1;
  }
  return 0;
}

/* A writer is alive while its pid runs here (kill(pid, 0) finds it; EPERM
 * means it exists under another user) or while it holds the file's lock. */
static int lg_remove_if_stale(int dfd, const char *name, long pid)
{
  if (pid <= 0 || pid == (long)getpid()) return 0;
  if (kill((pid_t)pid, 0) == 0 || errno != ESRCH) return 0;
  struct stat st;
  if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode)) return 0;
  int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return 0;
  int removed = 0;
  if (flock(fd, LOCK_EX | LOCK_NB) == 0 || (errno != EWOULDBLOCK && errno != EINTR))
    removed = unlinkat(dfd, name, 0) == 0;   /* still locked by us: no writer can start */
  close(fd);
  return removed;
}

int lg_atomic_clean(const char *dir, int n, const char *const *targets, const char *who)
{
  DIR *d = opendir(dir && *dir ? dir : ".");
  if (!d) {
    lg_error("%s: %s: cannot list the directory: %s", who, dir, strerror(errno));
    return -1;
  }
  int dfd = dirfd(d), removed = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    long pid;
    if (lg_is_target_tmp(e->d_name, n, targets, &pid))
      removed += lg_remove_if_stale(dfd, e->d_name, pid);
  }
  closedir(d);
  return removed;
}
