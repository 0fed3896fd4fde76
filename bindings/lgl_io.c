/* lgl_io.c: file formats and images for Lua: IDX, safetensors, PNG out,
 * images in, resize, sample grids and the drawing primitives the plots in
 * luagan.image use. The Lua-facing conventions:
 *   - images are (C,H,W) tensors with values in [0,1] (read_image divides by
 *     255, write_png maps a range, [0,1] by default, to 0..255);
 *   - drawing coordinates are continuous pixel coordinates, x right, y down,
 *     pixel (row i, column j) covering [j, j+1) x [i, i+1) (0-based: they are
 *     positions, not indices);
 *   - colours are a table of C numbers or one number for every channel. */
#include <math.h>
#include <string.h>
#include "lgl.h"
#include "lg_idx.h"
#include "lg_safetensors.h"
#include "lg_image.h"
#include "lga_draw.h"
#include "lg_atomic.h"

/* A string argument that must not hold a NUL byte (file names, tensor names,
 * metadata): the C side would silently cut it there. */
static const char *check_cstr(lua_State *L, int idx, const char *what)
{
  size_t n;
  const char *s = luaL_checklstring(L, idx, &n);
  if (strlen(s) != n)
    luaL_argerror(L, idx, lua_pushfstring(L, "%s contains a NUL byte", what));
  return s;
}

/* The string at stack index idx, which belongs to the table argument arg;
 * an error naming it if it holds a NUL byte. */
static const char *table_cstr(lua_State *L, int idx, int arg, const char *what, const char *key)
{
  size_t n;
  const char *s = lua_tolstring(L, idx, &n);
  if (strlen(s) != n)
    luaL_argerror(L, arg, lua_pushfstring(L, "%s '%s' contains a NUL byte (not storable "
                                          "in this format)", what, key));
  return s;
}

/* ---- IDX -------------------------------------------------------------------- */
static int io_load_idx(lua_State *L)
{
  return lgl_push(L, lg_idx_read(check_cstr(L, 1, "the file name")));
}

static const char *const idx_opts[] = {"dtype", NULL};

static int io_save_idx(lua_State *L)
{
  const char *path = check_cstr(L, 1, "the file name");
  lg_tensor *t = lgl_check(L, 2);
  lgl_checkopts(L, 3, idx_opts);
  int type = LG_IDX_F32;
  if (lua_type(L, 3) == LUA_TTABLE) {
    lua_getfield(L, 3, "dtype");
    if (!lua_isnil(L, -1)) {
      const char *d = lua_tostring(L, -1);
      if (d && strcmp(d, "float32") == 0) type = LG_IDX_F32;
      else if (d && strcmp(d, "ubyte") == 0) type = LG_IDX_UBYTE;
      else return luaL_argerror(L, 3, "option 'dtype' must be \"float32\" or \"ubyte\"");
    }
    lua_pop(L, 1);
  }
  if (lg_idx_write(path, t, type) != 0) return lgl_error(L);
  return 0;
}

/* ---- safetensors --------------------------------------------------------------- */
/* save_safetensors(path, {name = tensor, ...}, {key = "string", ...}) */
static int io_save_safetensors(lua_State *L)
{
  const char *path = check_cstr(L, 1, "the file name");
  luaL_checktype(L, 2, LUA_TTABLE);
  if (!lua_isnoneornil(L, 3)) luaL_checktype(L, 3, LUA_TTABLE);
  lua_settop(L, 3);
  int n = 0, nm = 0;
  for (lua_pushnil(L); lua_next(L, 2); lua_pop(L, 1)) n++;
  if (lua_istable(L, 3))
    for (lua_pushnil(L); lua_next(L, 3); lua_pop(L, 1)) nm++;
  /* scratch arrays owned by the collector, so an argument error cannot leak */
  const char **names = lua_newuserdatauv(L, sizeof(char *) * (n + 1), 0);
  lg_tensor **ts = lua_newuserdatauv(L, sizeof(lg_tensor *) * (n + 1), 0);
  const char **keys = lua_newuserdatauv(L, sizeof(char *) * (nm + 1), 0);
  const char **vals = lua_newuserdatauv(L, sizeof(char *) * (nm + 1), 0);
  int i = 0;
  for (lua_pushnil(L); lua_next(L, 2); lua_pop(L, 1)) {
    if (lua_type(L, -2) != LUA_TSTRING)
      return luaL_argerror(L, 2, lua_pushfstring(L, "tensor names must be strings, got a %s key",
                                                 luaL_typename(L, -2)));
    lg_tensor *t = lgl_test(L, -1);
    if (!t)
      return luaL_argerror(L, 2, lua_pushfstring(L, "'%s' is a %s, not a (live) tensor",
                                                 lua_tostring(L, -2), luaL_typename(L, -1)));
    /* the key stays alive in the table */
    names[i] = table_cstr(L, -2, 2, "tensor name", lua_tostring(L, -2));
    ts[i++] = t;
  }
  i = 0;
  if (lua_istable(L, 3))
    for (lua_pushnil(L); lua_next(L, 3); lua_pop(L, 1)) {
      if (lua_type(L, -2) != LUA_TSTRING || lua_type(L, -1) != LUA_TSTRING)
        return luaL_argerror(L, 3, lua_pushfstring(L, "metadata must map strings to strings, "
                                                   "got %s = %s", luaL_typename(L, -2),
                                                   luaL_typename(L, -1)));
      keys[i] = table_cstr(L, -2, 3, "metadata key", lua_tostring(L, -2));
      vals[i] = table_cstr(L, -1, 3, "the value of metadata", keys[i]);
      i++;
    }
  if (lg_st_write(path, n, names, ts, nm, keys, vals) != 0) return lgl_error(L);
  return 0;
}

/* A loaded file waiting to be turned into tables: freed by __gc if a
 * table allocation raises half way. */
#define LGL_STBOX "luagan.safetensors_box"
typedef struct { lg_st *st; } lgl_stbox;

static int stbox_gc(lua_State *L)
{
  lgl_stbox *b = luaL_checkudata(L, 1, LGL_STBOX);
  lg_st_free(b->st);
  b->st = NULL;
  return 0;
}

/* load_safetensors(path) -> {name = tensor, ...}, {key = "value", ...} */
static int io_load_safetensors(lua_State *L)
{
  const char *path = check_cstr(L, 1, "the file name");
  lgl_stbox *b = lua_newuserdatauv(L, sizeof *b, 0);
  b->st = NULL;
  if (luaL_newmetatable(L, LGL_STBOX)) {
    lua_pushcfunction(L, stbox_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
  b->st = lg_st_read(path);
  if (!b->st) return lgl_error(L);
  lg_st *st = b->st;
  lua_createtable(L, 0, st->n);
  for (int i = 0; i < st->n; i++) {
    lg_tensor *t = st->tensors[i];
    st->tensors[i] = NULL;              /* the userdata owns it from here */
    lgl_push(L, t);
    lua_setfield(L, -2, st->names[i]);
  }
  lua_createtable(L, 0, st->nmeta);
  for (int i = 0; i < st->nmeta; i++) {
    lua_pushstring(L, st->vals[i]);
    lua_setfield(L, -2, st->keys[i]);
  }
  lg_st_free(st);
  b->st = NULL;
  return 2;
}

/* ---- images ---------------------------------------------------------------------- */
/* Optional {lo, hi} range table in field `key` of the options at idx. */
static void opt_range(lua_State *L, int idx, const char *key, float *lo, float *hi)
{
  if (lua_type(L, idx) != LUA_TTABLE) return;
  lua_getfield(L, idx, key);
  if (!lua_isnil(L, -1)) {
    if (!lua_istable(L, -1) || lua_rawlen(L, -1) != 2)
      luaL_argerror(L, idx, lua_pushfstring(L, "option '%s' must be a table {lo, hi}", key));
    lua_rawgeti(L, -1, 1);
    lua_rawgeti(L, -2, 2);
    if (!lua_isnumber(L, -2) || !lua_isnumber(L, -1))
      luaL_argerror(L, idx, lua_pushfstring(L, "option '%s' must hold two numbers", key));
    *lo = (float)lua_tonumber(L, -2);
    *hi = (float)lua_tonumber(L, -1);
    lua_pop(L, 2);
  }
  lua_pop(L, 1);
}

static const char *const png_opts[] = {"range", NULL};

/* write_png(path, t (C,H,W) or (H,W), {range = {0, 1}}) */
static int io_write_png(lua_State *L)
{
  const char *path = check_cstr(L, 1, "the file name");
  lg_tensor *t = lgl_check(L, 2);
  lgl_checkopts(L, 3, png_opts);
  float lo = 0, hi = 1;
  opt_range(L, 3, "range", &lo, &hi);
  if (lg_png_write(path, t, lo, hi) != 0) return lgl_error(L);
  return 0;
}

static const char *const read_opts[] = {"channels", "max_pixels", NULL};

/* read_image(path, {channels = 0|1|3|4, max_pixels = n}) -> (C,H,W) in [0,1] */
static int io_read_image(lua_State *L)
{
  const char *path = check_cstr(L, 1, "the file name");
  lgl_checkopts(L, 2, read_opts);
  int ch = (int)lgl_optint(L, 2, "channels", 0, 0, 4);
  /* 0 = the default limit (LUAGAN_MAX_IMAGE_PIXELS or 2^26); range-checked
   * here, before the conversion to an integer */
  lua_Number mp = lgl_optnum(L, 2, "max_pixels", 0);
  if (mp != 0 && !(mp >= 1 && mp <= (lua_Number)LG_IMAGE_PIXELS_CAP && mp == floor(mp)))
    return luaL_argerror(L, 2, lua_pushfstring(L, "option 'max_pixels' = %f must be an integer "
                                               "in 1..2^38", mp));
  lg_tensor *t = lg_image_read_max(path, ch, (int64_t)mp);
  if (!t) return lgl_error(L);
  float *d = lg_data(t);
  int64_t n = lg_numel(t);
  for (int64_t i = 0; i < n; i++) d[i] *= 1.0f / 255.0f;
  return lgl_push(L, t);
}

/* resize(t, h, w): antialiased bilinear; t (H,W), (C,H,W) or (N,C,H,W) */
static int io_resize(lua_State *L)
{
  lg_tensor *t = lgl_check(L, 1);
  lua_Integer h = luaL_checkinteger(L, 2), w = luaL_checkinteger(L, 3);
  return lgl_push(L, lg_resize_bilinear(t, h, w));
}

static const char *const grid_opts[] = {"nrow", "padding", "range", "pad_value", NULL};

/* image_grid(t (N,C,H,W), {nrow = 8, padding = 2, range = {-1, 1}, pad_value = 0})
 * -> (C,H',W') in [0,1] */
static int io_image_grid(lua_State *L)
{
  lg_tensor *t = lgl_check(L, 1);
  lgl_checkopts(L, 2, grid_opts);
  int nrow = (int)lgl_optint(L, 2, "nrow", 8, 1, LGL_MAXGEOM);
  int pad = (int)lgl_optint(L, 2, "padding", 2, 0, 1024);
  float pv = (float)lgl_optnum(L, 2, "pad_value", 0);
  float lo = -1, hi = 1;
  opt_range(L, 2, "range", &lo, &hi);
  return lgl_push(L, lg_image_grid(t, nrow, pad, lo, hi, pv));
}

/* ---- drawing ------------------------------------------------------------------------ */
/* The colour in field "color" of the options at idx, one entry per channel. */
static void opt_color(lua_State *L, int idx, const lg_tensor *img, float *c)
{
  int64_t C = img->ndim == 3 ? img->shape[0] : 1;
  if (C > 4) C = 4;
  for (int k = 0; k < C; k++) c[k] = 0;
  if (lua_type(L, idx) != LUA_TTABLE) return;
  lua_getfield(L, idx, "color");
  if (lua_type(L, -1) == LUA_TNUMBER) {
    for (int k = 0; k < C; k++) c[k] = (float)lua_tonumber(L, -1);
  } else if (lua_istable(L, -1)) {
    if ((int64_t)lua_rawlen(L, -1) != C)
      luaL_argerror(L, idx, lua_pushfstring(L, "option 'color' has %d entries, the image has "
                                            "%d channels", (int)lua_rawlen(L, -1), (int)C));
    for (int k = 0; k < C; k++) {
      lua_rawgeti(L, -1, k + 1);
      c[k] = (float)lua_tonumber(L, -1);
      lua_pop(L, 1);
    }
  } else if (!lua_isnil(L, -1)) {
    luaL_argerror(L, idx, "option 'color' must be a number or a table of numbers");
  }
  lua_pop(L, 1);
}

static lg_tensor *check_canvas(lua_State *L, int idx)
{
  lg_tensor *img = lgl_check(L, idx);
  if (img->ndim != 3 || img->shape[0] < 1 || img->shape[0] > 4)
    luaL_argerror(L, idx, "expected an image (C,H,W) with 1..4 channels");
  return img;
}

static const char *const pts_opts[] = {"radius", "color", "alpha", NULL};

/* draw_points(img, pts (N,2) pixel (x,y), {radius = 1, color = ..., alpha = 1}) */
static int io_draw_points(lua_State *L)
{
  lg_tensor *img = check_canvas(L, 1), *pts = lgl_check(L, 2);
  lgl_checkopts(L, 3, pts_opts);
  float c[4];
  opt_color(L, 3, img, c);
  float r = (float)lgl_optnum(L, 3, "radius", 1), a = (float)lgl_optnum(L, 3, "alpha", 1);
  if (lga_draw_points(img, pts, r, c, a) != 0) return lgl_error(L);
  return 0;
}

static const char *const line_opts[] = {"width", "color", NULL};

/* draw_line(img, x0, y0, x1, y1, {width = 1, color = ...}) */
static int io_draw_line(lua_State *L)
{
  lg_tensor *img = check_canvas(L, 1);
  float x0 = (float)luaL_checknumber(L, 2), y0 = (float)luaL_checknumber(L, 3);
  float x1 = (float)luaL_checknumber(L, 4), y1 = (float)luaL_checknumber(L, 5);
  lgl_checkopts(L, 6, line_opts);
  float c[4];
  opt_color(L, 6, img, c);
  if (lga_draw_line(img, x0, y0, x1, y1, (float)lgl_optnum(L, 6, "width", 1), c) != 0)
    return lgl_error(L);
  return 0;
}

static const char *const rect_opts[] = {"color", NULL};

/* draw_rect(img, x0, y0, x1, y1, {color = ...}): filled [x0,x1) x [y0,y1) */
static int io_draw_rect(lua_State *L)
{
  lg_tensor *img = check_canvas(L, 1);
  float x0 = (float)luaL_checknumber(L, 2), y0 = (float)luaL_checknumber(L, 3);
  float x1 = (float)luaL_checknumber(L, 4), y1 = (float)luaL_checknumber(L, 5);
  lgl_checkopts(L, 6, rect_opts);
  float c[4];
  opt_color(L, 6, img, c);
  if (lga_draw_rect(img, x0, y0, x1, y1, c) != 0) return lgl_error(L);
  return 0;
}

static const char *const text_opts[] = {"scale", "color", NULL};

/* draw_text(img, x, y, text, {scale = 1, color = ...}) -> width in pixels */
static int io_draw_text(lua_State *L)
{
  lg_tensor *img = check_canvas(L, 1);
  float x = (float)luaL_checknumber(L, 2), y = (float)luaL_checknumber(L, 3);
  const char *s = luaL_checkstring(L, 4);
  lgl_checkopts(L, 5, text_opts);
  float c[4];
  opt_color(L, 5, img, c);
  int w = 0;
  if (lga_draw_text(img, x, y, s, (int)lgl_optint(L, 5, "scale", 1, 1, LGA_TEXT_MAX_SCALE), c, &w) != 0)
    return lgl_error(L);
  lua_pushinteger(L, w);
  return 1;
}

/* text_width(text, scale) -> pixels */
static int io_text_width(lua_State *L)
{
  const char *text = luaL_checkstring(L, 1);
  lua_Integer scale = lua_isnoneornil(L, 2) ? 1 : lgl_checkint(L, 2, "scale", 1, LGA_TEXT_MAX_SCALE);
  int w = lga_text_width(text);
  if (w < 0) return lgl_error(L);
  lua_pushinteger(L, (lua_Integer)w * scale);
  return 1;
}

/* ---- plain files: the one atomic writer, checked appends, stale temps ------ */
/* write_file_atomic(path, data): replace path with the bytes of data through
 * an exclusive temporary, fsync and rename (lg_atomic.h) */
static int io_write_file_atomic(lua_State *L)
{
  const char *path = check_cstr(L, 1, "the file name");
  size_t n;
  const char *data = luaL_checklstring(L, 2, &n);
  if (lg_atomic_write_file(path, data, n, "write_atomic") != 0) return lgl_error(L);
  return 0;
}

/* append_file(path, data): append the bytes (all or nothing) */
static int io_append_file(lua_State *L)
{
  const char *path = check_cstr(L, 1, "the file name");
  size_t n;
  const char *data = luaL_checklstring(L, 2, &n);
  if (lg_append_file(path, data, n, "append") != 0) return lgl_error(L);
  return 0;
}

/* clean_stale_temps(dir, {"checkpoint.safetensors", "samples_*.png", ...})
 * -> number of stale temporaries of those files removed */
static int io_clean_stale_temps(lua_State *L)
{
  const char *dir = check_cstr(L, 1, "the directory name");
  luaL_checktype(L, 2, LUA_TTABLE);
  int n = (int)luaL_len(L, 2);
  const char **pats = lua_newuserdatauv(L, sizeof(char *) * (n + 1), 0);
  for (int i = 0; i < n; i++) {
    lua_rawgeti(L, 2, i + 1);
    if (lua_type(L, -1) != LUA_TSTRING)
      return luaL_argerror(L, 2, lua_pushfstring(L, "entry %d is a %s, expected a file name "
                                                 "pattern", i + 1, luaL_typename(L, -1)));
    pats[i] = table_cstr(L, -1, 2, "file name pattern", lua_tostring(L, -1));
    if (strchr(pats[i], '/'))
      return luaL_argerror(L, 2, lua_pushfstring(L, "'%s' must be a file name in the "
                                                 "directory, not a path", pats[i]));
    lua_pop(L, 1);   /* the string stays alive in the table */
  }
  int removed = lg_atomic_clean(dir, n, pats, "clean_stale_temps");
  if (removed < 0) return lgl_error(L);
  lua_pushinteger(L, removed);
  return 1;
}

static const luaL_Reg io_fns[] = {
  {"load_idx", io_load_idx}, {"save_idx", io_save_idx},
  {"save_safetensors", io_save_safetensors}, {"load_safetensors", io_load_safetensors},
  {"write_png", io_write_png}, {"read_image", io_read_image}, {"resize", io_resize},
  {"image_grid", io_image_grid}, {"draw_points", io_draw_points}, {"draw_line", io_draw_line},
  {"draw_rect", io_draw_rect}, {"draw_text", io_draw_text}, {"text_width", io_text_width},
  {"write_file_atomic", io_write_file_atomic}, {"append_file", io_append_file},
  {"clean_stale_temps", io_clean_stale_temps},
  {NULL, NULL}
};

void lgl_open_io(lua_State *L)
{
  lgl_setfuncs(L, io_fns, 0);
}
