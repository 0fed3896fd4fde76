/* lgl_fs.c: the filesystem calls the Lua half needs and plain Lua lacks, so
 * that nothing in scripts/ or models/ runs a shell (a directory name from
 * package.path, a run's --out or a data folder is data, never a command):
 *
 *   lg.listdir(path)        -> {names...}, sorted bytewise, without . and ..
 *   lg.isdir(path)          -> boolean (follows links)
 *   lg.isfile(path)         -> boolean: a regular file (follows links)
 *   lg.writable(path)       -> boolean: this process may create files in / write path
 *   lg.mkdir_p(path)        -> path, creating missing parents (as mkdir -p)
 *   lg.read_head(path, n)   -> the first n bytes, gunzipped when gzip (zlib)
 *   lg.sha256_file(path)    -> the file's SHA-256 as 64 hex digits
 *
 * Failures raise "NAME: PATH: strerror" without a position, ready to be shown
 * to a user (the Lua callers turn them into usage errors where the path came
 * from the command line). */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>
#include <zlib.h>
#include "lgl.h"

#define DIR_BOX "luagan.fs.dir"

/* Raise "who: path: strerror(err)" as a plain string (no "file:line:"). */
static int fs_fail(lua_State *L, const char *who, const char *path, int err)
{
  lua_pushfstring(L, "%s: %s: %s", who, path, strerror(err));
  return lua_error(L);
}

/* ---- listdir ------------------------------------------------------------------ */
/* The DIR* lives in a userdata whose __gc closes it, so an out-of-memory
 * error while names are pushed cannot leak the descriptor. */
static int dirbox_gc(lua_State *L)
{
  DIR **d = (DIR **)luaL_checkudata(L, 1, DIR_BOX);
  if (*d) closedir(*d);
  *d = NULL;
  return 0;
}

static int cmp_names(const void *a, const void *b)
{
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int fs_listdir(lua_State *L)
{
  const char *path = luaL_checkstring(L, 1);
  DIR **box = (DIR **)lua_newuserdatauv(L, sizeof(DIR *), 0);
  *box = NULL;
  if (luaL_newmetatable(L, DIR_BOX)) {
    lua_pushcfunction(L, dirbox_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
  *box = opendir(path);
  if (!*box) return fs_fail(L, "listdir", path, errno);
  lua_newtable(L);                        /* names, unsorted; anchors the strings */
  lua_Integer n = 0;
  struct dirent *e;
  errno = 0;
  while ((e = readdir(*box)) != NULL) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    lua_pushstring(L, e->d_name);
    lua_rawseti(L, -2, ++n);
    errno = 0;
  }
  int err = errno;
  closedir(*box);
  *box = NULL;
  if (err) return fs_fail(L, "listdir", path, err);
  /* sort pointers into the anchored strings; the array is a userdata too */
  const char **names = (const char **)lua_newuserdatauv(L, (size_t)(n ? n : 1) * sizeof *names, 0);
  for (lua_Integer i = 1; i <= n; i++) {
    lua_rawgeti(L, -2, i);
    names[i - 1] = lua_tostring(L, -1);
    lua_pop(L, 1);                        /* still referenced by the table */
  }
  qsort(names, (size_t)n, sizeof *names, cmp_names);
  lua_createtable(L, (int)n, 0);
  for (lua_Integer i = 1; i <= n; i++) {
    lua_pushstring(L, names[i - 1]);
    lua_rawseti(L, -2, i);
  }
  return 1;
}

/* ---- isdir / isfile ------------------------------------------------------------- */
static int fs_isdir(lua_State *L)
{
  struct stat st;
  lua_pushboolean(L, stat(luaL_checkstring(L, 1), &st) == 0 && S_ISDIR(st.st_mode));
  return 1;
}

static int fs_isfile(lua_State *L)
{
  struct stat st;
  lua_pushboolean(L, stat(luaL_checkstring(L, 1), &st) == 0 && S_ISREG(st.st_mode));
  return 1;
}

/* checked up front, so an unwritable --out is one clear line, not a failed write later */
static int fs_writable(lua_State *L)
{
  lua_pushboolean(L, access(luaL_checkstring(L, 1), W_OK) == 0);
  return 1;
}

/* ---- mkdir_p ---------------------------------------------------------------------- */
/* Create one directory; an existing directory is fine, anything else there is not. */
static int make_one(const char *dir)
{
  if (mkdir(dir, 0777) == 0) return 0;
  int err = errno;
  struct stat st;                         /* there already (EEXIST, or EROFS/EACCES on some systems) */
  if (stat(dir, &st) == 0) return S_ISDIR(st.st_mode) ? 0 : ENOTDIR;
  return err;
}

static int fs_mkdir_p(lua_State *L)
{
  size_t len;
  const char *path = luaL_checklstring(L, 1, &len);
  if (len == 0) return luaL_argerror(L, 1, "empty path");
  if (strlen(path) != len) return luaL_argerror(L, 1, "path contains a NUL byte");
  /* a writable copy in Lua memory: each '/' is cut in turn to make the parents */
  char *buf = (char *)lua_newuserdatauv(L, len + 1, 0);
  memcpy(buf, path, len + 1);
  for (char *p = buf + 1; *p; p++) {
    if (*p != '/') continue;
    *p = 0;
    int err = make_one(buf);
    *p = '/';
    if (err) {
      lua_pushfstring(L, "mkdir_p: cannot create %s (at %s): %s", path,
                      lua_pushlstring(L, buf, (size_t)(p - buf)), strerror(err));
      return lua_error(L);
    }
  }
  int err = make_one(buf);
  if (err) {
    lua_pushfstring(L, "mkdir_p: cannot create %s: %s", path, strerror(err));
    return lua_error(L);
  }
  lua_pushvalue(L, 1);
  return 1;
}

/* ---- read_head -------------------------------------------------------------------- */
/* gzread passes a file that is not gzip through unchanged, so one call reads
 * both (an IDX header behind .gz or not). */
static int fs_read_head(lua_State *L)
{
  const char *path = luaL_checkstring(L, 1);
  lua_Integer n = luaL_checkinteger(L, 2);
  luaL_argcheck(L, n >= 0 && n <= 1 << 20, 2, "byte count must be in 0..1048576");
  char *buf = (char *)lua_newuserdatauv(L, (size_t)(n ? n : 1), 0);
  errno = 0;
  gzFile f = gzopen(path, "rb");
  if (!f) return fs_fail(L, "read_head", path, errno ? errno : ENOMEM);
  int got = gzread(f, buf, (unsigned)n);
  int zerr = 0;
  const char *zmsg = got < 0 ? gzerror(f, &zerr) : NULL;
  if (got < 0) {
    lua_pushfstring(L, "read_head: %s: %s", path,
                    zerr == Z_ERRNO ? strerror(errno) : (zmsg ? zmsg : "read error"));
    gzclose(f);
    return lua_error(L);
  }
  gzclose(f);
  lua_pushlstring(L, buf, (size_t)got);
  return 1;
}

/* ---- sha256_file ------------------------------------------------------------------- */
/* FIPS 180-4 SHA-256, to print the checksum of written weights without
 * running sha256sum. */
typedef struct {
  uint32_t h[8];
  uint64_t bits;
  unsigned char block[64];
  size_t fill;
} sha256_ctx;

static const uint32_t SHA_K[64] = {
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

static uint32_t rotr(uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }

static void sha256_block(sha256_ctx *c, const unsigned char *p)
{
  uint32_t w[64], s[8];
  for (int i = 0; i < 16; i++)
    w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
           (uint32_t)p[4 * i + 2] << 8 | (uint32_t)p[4 * i + 3];
  for (int i = 16; i < 64; i++) {
    uint32_t s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >> 3);
    uint32_t s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >> 10);
    w[i] = w[i - 16] + s0 + w[i - 7] + s1;
  }
  memcpy(s, c->h, sizeof s);
  for (int i = 0; i < 64; i++) {
    uint32_t t1 = s[7] + (rotr(s[4], 6) ^ rotr(s[4], 11) ^ rotr(s[4], 25)) +
                  ((s[4] & s[5]) ^ (~s[4] & s[6])) + SHA_K[i] + w[i];
    uint32_t t2 = (rotr(s[0], 2) ^ rotr(s[0], 13) ^ rotr(s[0], 22)) +
                  ((s[0] & s[1]) ^ (s[0] & s[2]) ^ (s[1] & s[2]));
    memmove(s + 1, s, 7 * sizeof *s);
    s[4] += t1;
    s[0] = t1 + t2;
  }
  for (int i = 0; i < 8; i++) c->h[i] += s[i];
}

static void sha256_init(sha256_ctx *c)
{
  static const uint32_t h0[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
  memcpy(c->h, h0, sizeof h0);
  c->bits = 0;
  c->fill = 0;
}

static void sha256_update(sha256_ctx *c, const unsigned char *p, size_t n)
{
  c->bits += (uint64_t)n * 8;
  while (n > 0) {
    size_t k = 64 - c->fill < n ? 64 - c->fill : n;
    memcpy(c->block + c->fill, p, k);
    c->fill += k;
    p += k;
    n -= k;
    if (c->fill == 64) { sha256_block(c, c->block); c->fill = 0; }
  }
}

static void sha256_final(sha256_ctx *c, unsigned char out[32])
{
  uint64_t bits = c->bits;
  unsigned char pad[72] = {0x80};
  size_t padlen = (c->fill < 56 ? 56 : 120) - c->fill;
  for (int i = 0; i < 8; i++) pad[padlen + i] = (unsigned char)(bits >> (56 - 8 * i));
  sha256_update(c, pad, padlen + 8);
  for (int i = 0; i < 8; i++)
    for (int j = 0; j < 4; j++) out[4 * i + j] = (unsigned char)(c->h[i] >> (24 - 8 * j));
}

/* The FILE* is closed before any Lua call that could raise. */
static int fs_sha256_file(lua_State *L)
{
  const char *path = luaL_checkstring(L, 1);
  FILE *f = fopen(path, "rb");
  if (!f) return fs_fail(L, "sha256_file", path, errno);
  sha256_ctx c;
  sha256_init(&c);
  unsigned char buf[1 << 16];
  size_t got;
  while ((got = fread(buf, 1, sizeof buf, f)) > 0) sha256_update(&c, buf, got);
  int err = ferror(f) ? errno : 0;
  fclose(f);
  if (err) return fs_fail(L, "sha256_file", path, err);
  unsigned char dig[32];
  char hex[65];
  sha256_final(&c, dig);
  for (int i = 0; i < 32; i++) snprintf(hex + 2 * i, 3, "%02x", dig[i]);
  lua_pushlstring(L, hex, 64);
  return 1;
}

void lgl_open_fs(lua_State *L)
{
  static const luaL_Reg fns[] = {
    {"listdir", fs_listdir}, {"isdir", fs_isdir}, {"isfile", fs_isfile}, {"writable", fs_writable},
    {"mkdir_p", fs_mkdir_p}, {"read_head", fs_read_head}, {"sha256_file", fs_sha256_file},
    {NULL, NULL},
  };
  lgl_setfuncs(L, fns, 0);
}
