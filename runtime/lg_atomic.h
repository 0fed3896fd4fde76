/* lg_atomic.h: write a file so that a crash or a full disk never leaves it
 * half written, and append to a log without losing or garbling records.
 *
 * Replacing a file: the content goes to a new temporary
 * "<path>.tmp.<pid>.<XXXXXX>" in the same directory (XXXXXX random), created
 * exclusively (O_CREAT|O_EXCL|O_NOFOLLOW: a link or file planted at that name
 * makes the open fail instead of being followed or overwritten) with mode
 * 0666 minus the umask, like any new file. Commit checks every step (write,
 * flush, fsync, close, rename, the directory fsync) and renames it over
 * <path> (atomic on POSIX), so readers see either the old file or the whole
 * new one. On any error before the rename the temporary is removed, the old
 * file is untouched and the error names the file and the OS error. While it
 * is being written the temporary is flock'ed, so lg_atomic_clean can tell a
 * live writer's temporary from one a killed process left behind.
 * Used by the checkpoint (safetensors), IDX, PNG writers and, through
 * core.write_file_atomic, by the Lua side (options.json, metrics.jsonl).
 */
#ifndef LG_ATOMIC_H
#define LG_ATOMIC_H

#include <stddef.h>
#include <stdio.h>

typedef struct lg_afile {
  FILE *f;          /* write here between open and commit */
  char *path;       /* final name */
  char *tmp;        /* temporary name */
  const char *who;  /* prefix of error messages ("safetensors") */
} lg_afile;

/* Create the temporary for writing; -1 with error "<who>: <path>: ..." */
int lg_atomic_open(lg_afile *a, const char *path, const char *who);
/* Flush, fsync, close and rename; -1 with error (the temporary is removed
 * and the previous file kept, unless only the final directory fsync failed:
 * then the new file is in place and the error says so). */
int lg_atomic_commit(lg_afile *a);
/* Close and remove the temporary (after a failed write). */
void lg_atomic_abort(lg_afile *a);

/* Replace path with the n bytes at data (open + write + commit). */
int lg_atomic_write_file(const char *path, const void *data, size_t n, const char *who);

/* Append the n bytes at data to path (created if missing) with write(2), so
 * they reach the kernel before it returns. On a failed or short write the
 * file is cut back to its previous length (no half record) and -1 is
 * returned with an error naming the file and the OS error. */
int lg_append_file(const char *path, const void *data, size_t n, const char *who);

/* Remove the stale temporaries of lg_atomic_open in directory dir: names
 * "<base>.tmp.<pid>.<XXXXXX>" (and "<base>.tmp.<pid>", the form before the
 * random suffix) whose <base> matches one of the n fnmatch patterns in
 * targets ("checkpoint.safetensors", "samples_*.png"), that are regular files,
 * whose pid is not a live process on this machine and that no process holds
 * locked (a writer in another pid namespace or on another NFS client).
 * Anything else is never touched. Returns the number removed, or -1 with
 * error when dir cannot be read. */
int lg_atomic_clean(const char *dir, int n, const char *const *targets, const char *who);

#endif
