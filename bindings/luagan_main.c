/* luagan_main.c: the `luagan` executable: Lua 5.4 with luagan.core preloaded
 * and the project's scripts/ and models/ on package.path. Modelled on lua.c:
 *
 *   luagan script.lua a b     run a script; arg[0] = script, arg[1..] = a, b
 *   luagan -e 'code'          run a string (several -e run in order)
 *   luagan -                  run stdin
 *   luagan -i script.lua      interactive prompt after the script
 *   luagan -v                 version
 *   luagan                    interactive prompt (stdin as a script when not a terminal)
 *   luagan run NAME ...       a command: handed to require("luagan.cli").main{"run", NAME, ...}
 *   luagan --help, -h         the same as `luagan help`
 *
 * The prompt has lg = require "luagan" loaded and, built with readline,
 * line editing, history in ~/.luagan_history and Tab completion.
 *
 * A first argument that is a word (lower-case letters, digits, - and _) is
 * always a command, even when a file of that name exists here: a script is
 * named by a path that is not a word (./run, dir/x, x.lua).
 *
 * It also preloads "luagan.sys", the names earlier versions used for the
 * process services that now live in luagan.core (signal flag, isatty,
 * clock, getpid), so a stock lua5.4 with the rock trains the same way.
 *
 * The root holding scripts/ and models/ is $LUAGAN_ROOT, else the source
 * tree this binary was built from (if it still has scripts/luagan/init.lua),
 * else the install prefix. Errors print a traceback and exit with status 1;
 * a usage error (the user's mistake) prints one line, with a traceback only
 * under -v. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>
#include "lgl.h"
#ifdef LUAGAN_READLINE
#include <readline/readline.h>
#include <readline/history.h>
#endif

#ifndef LUAGAN_SOURCE_DIR
#define LUAGAN_SOURCE_DIR "."
#endif
#ifndef LUAGAN_INSTALL_DIR
#define LUAGAN_INSTALL_DIR "/usr/local/share/luagan"
#endif
#define MAXINPUT 4096

static const char *progname = "luagan";
static int verbose = 0;                    /* -v: tracebacks for usage errors too */

static void message(const char *msg)
{
  fprintf(stderr, "%s: %s\n", progname, msg);
  fflush(stderr);
}

/* Error handler: the message plus a traceback. A usage error (a table with
 * usage = true and a message, raised by luagan.recipe.fail for a bad option
 * or a missing file) is the user's mistake, not a bug: its message alone
 * (with the traceback under -v, to see where it was raised). */
static int msghandler(lua_State *L)
{
  const char *msg = NULL;
  if (lua_type(L, 1) == LUA_TTABLE) {
    lua_getfield(L, 1, "usage");
    int usage = lua_toboolean(L, -1);
    lua_pop(L, 1);
    if (usage) {
      lua_getfield(L, 1, "message");
      if (lua_type(L, -1) == LUA_TSTRING) {
        if (!verbose) return 1;
        msg = lua_tostring(L, -1);
      } else lua_pop(L, 1);
    }
  }
  if (!msg) msg = lua_tostring(L, 1);
  if (!msg) {
    if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING) return 1;
    msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
  }
  luaL_traceback(L, L, msg, 1);
  return 1;
}

static int docall(lua_State *L, int narg, int nres)
{
  int base = lua_gettop(L) - narg;
  lua_pushcfunction(L, msghandler);
  lua_insert(L, base);
  int status = lua_pcall(L, narg, nres, base);
  lua_remove(L, base);
  return status;
}

static int report(lua_State *L, int status)
{
  if (status != LUA_OK) {
    const char *msg = lua_tostring(L, -1);
    message(msg ? msg : "(error object is not a string)");
    lua_pop(L, 1);
  }
  return status;
}

static int exists(const char *path)
{
  struct stat st;
  return stat(path, &st) == 0;
}

static const char *find_root(void)
{
  static char buf[4096];
  const char *env = getenv("LUAGAN_ROOT");
  if (env && *env) return env;
  snprintf(buf, sizeof buf, "%s/scripts/luagan/init.lua", LUAGAN_SOURCE_DIR);
  if (exists(buf)) return LUAGAN_SOURCE_DIR;
  return LUAGAN_INSTALL_DIR;
}


/* ---- luagan.sys -------------------------------------------------------------
 * The process services the training loop needs moved into luagan.core
 * (bindings/lgl_sys.c: SIGINT/SIGTERM flag, isatty, getpid; lgl_core.c:
 * clock), so a stock lua5.4 behaves the same. "luagan.sys" stays as the
 * names scripts written for earlier versions use. */
static int luaopen_luagan_sys(lua_State *L)
{
  static const char *const names[][2] = {
    {"catch_sigint", "catch_interrupts"}, {"interrupted", "interrupted"},
    {"clear_interrupt", "clear_interrupt"}, {"isatty", "isatty"},
    {"clock", "clock"}, {"getpid", "getpid"},
  };
  luaL_requiref(L, "luagan.core", luaopen_luagan_core, 0);
  lua_createtable(L, 0, (int)(sizeof names / sizeof names[0]));
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    lua_getfield(L, -2, names[i][1]);
    lua_setfield(L, -2, names[i][0]);
  }
  return 1;
}

/* package.preload["luagan.core"], package.path, package.loaded["luagan.config"]. */
static void setup(lua_State *L, const char *root)
{
  luaL_openlibs(L);
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  lua_pushcfunction(L, luaopen_luagan_core);
  lua_setfield(L, -2, "luagan.core");
  lua_pushcfunction(L, luaopen_luagan_sys);
  lua_setfield(L, -2, "luagan.sys");
  lua_pop(L, 1);
  lua_getglobal(L, "package");
  lua_getfield(L, -1, "path");
  lua_pushfstring(L, "%s/scripts/?.lua;%s/scripts/?/init.lua;%s/models/?.lua;%s",
                  root, root, root, lua_tostring(L, -1));
  lua_setfield(L, -3, "path");
  lua_pop(L, 1);
  /* C modules built beside the core (luagan.mpi): the build tree's while
   * running from the source tree, else the installed ones */
  lua_getfield(L, -1, "cpath");
  lua_pushfstring(L, "%s/?.so;%s", strcmp(root, LUAGAN_SOURCE_DIR) ? LUAGAN_INSTALL_CMOD_DIR
                  : LUAGAN_BUILD_CMOD_DIR, lua_tostring(L, -1));
  lua_setfield(L, -3, "cpath");
  lua_pop(L, 1);
  lua_getfield(L, -1, "loaded");
  lua_createtable(L, 0, 2);
  lua_pushstring(L, root);
  lua_setfield(L, -2, "root");
  lua_pushliteral(L, LUAGAN_VERSION);
  lua_setfield(L, -2, "version");
  lua_setfield(L, -2, "luagan.config");
  lua_pop(L, 2);
}

/* arg: arg[0] = the script, arg[1..] its arguments, negative indices for
 * the interpreter and its options (as lua.c does). */
static void create_arg(lua_State *L, char **argv, int argc, int script)
{
  lua_createtable(L, argc - script - 1 > 0 ? argc - script - 1 : 0, script + 1);
  for (int i = 0; i < argc; i++) {
    lua_pushstring(L, argv[i]);
    lua_rawseti(L, -2, i - script);
  }
  lua_setglobal(L, "arg");
}

static int run_chunk(lua_State *L, int status, char **argv, int argc, int first)
{
  if (status == LUA_OK) {
    int n = 0;
    for (int i = first; i < argc; i++, n++) lua_pushstring(L, argv[i]);
    status = docall(L, n, 0);
  }
  return report(L, status);
}

/* A command word ("run", "sample"): lower-case letters, digits, - and _.
 * Commands win over files of the same name in the current directory (a
 * file called `run` must never run instead of the command); a script is
 * given as a path that cannot be a word (./run, dir/x, x.lua). */
static int is_command(const char *s)
{
  if (!islower((unsigned char)s[0])) return 0;
  for (const char *p = s; *p; p++)
    if (!(islower((unsigned char)*p) || isdigit((unsigned char)*p) || *p == '-' || *p == '_'))
      return 0;
  return 1;
}

/* require("luagan.cli").main({argv[first], ...}); 1 with a message when
 * luagan.cli is absent (a command word never falls back to a file). */
static int run_command(lua_State *L, char **argv, int argc, int first)
{
  lua_getglobal(L, "package");
  lua_getfield(L, -1, "searchpath");
  lua_pushliteral(L, "luagan.cli");
  lua_getfield(L, -3, "path");
  lua_call(L, 2, 1);
  int found = !lua_isnil(L, -1);
  lua_pop(L, 2);
  if (!found) {
    fprintf(stderr, "%s: '%s' is a command, but luagan.cli is not on package.path "
            "(check LUAGAN_ROOT); to run a file of that name, give its path: ./%s\n",
            progname, argv[first], argv[first]);
    return 1;
  }
  lua_getglobal(L, "require");
  lua_pushliteral(L, "luagan.cli");
  int status = docall(L, 1, 1);
  if (status != LUA_OK) return report(L, status) == LUA_OK ? 0 : 1;
  lua_getfield(L, -1, "main");
  lua_remove(L, -2);
  lua_createtable(L, argc - first, 0);
  for (int i = first; i < argc; i++) {
    lua_pushstring(L, argv[i]);
    lua_rawseti(L, -2, i - first + 1);
  }
  status = docall(L, 1, 1);
  if (report(L, status) != LUA_OK) return 1;
  int rc = lua_type(L, -1) == LUA_TNUMBER ? (int)lua_tointeger(L, -1)
         : (lua_type(L, -1) == LUA_TBOOLEAN && !lua_toboolean(L, -1)) ? 1 : 0;
  lua_pop(L, 1);
  return rc;
}

/* ---- interactive prompt ------------------------------------------------------
 * With GNU readline (LUAGAN_READLINE, found by CMake; Debian libreadline-dev,
 * as the stock lua5.4 uses) a prompt on a terminal has line editing, history
 * kept across sessions in ~/.luagan_history ($LUAGAN_HISTORY names another
 * file; empty: none) and Tab completion of global names, keywords and the
 * fields after `.` or the methods after `:` of what the prefix names
 * (`lg.ze<Tab>`, `x:su<Tab>`). Without readline, or off a terminal, lines
 * are read with fgets. */
#define HISTORY_MAX 1000

static lua_State *repl_L;                  /* the state Tab completion looks names up in */
static int use_readline;                   /* readline: a terminal and the library */

static const char *history_file(void)
{
  static char buf[4096];
  const char *env = getenv("LUAGAN_HISTORY");
  if (env) return *env ? env : NULL;
  const char *home = getenv("HOME");
  if (!home || !*home) return NULL;
  if (snprintf(buf, sizeof buf, "%s/.luagan_history", home) >= (int)sizeof buf) return NULL;
  return buf;
}

static const char *const lua_keywords[] = {
  "and", "break", "do", "else", "elseif", "end", "false", "for", "function", "goto", "if",
  "in", "local", "nil", "not", "or", "repeat", "return", "then", "true", "until", "while", NULL,
};

static int is_name(const char *s, size_t len)
{
  if (len == 0 || !(isalpha((unsigned char)s[0]) || s[0] == '_')) return 0;
  for (size_t i = 1; i < len; i++)
    if (!(isalnum((unsigned char)s[i]) || s[i] == '_')) return 0;
  return 1;
}

/* Add head .. key to the set at index `out` when key starts with part. */
static void offer(lua_State *L, int out, const char *head, size_t headlen, const char *key,
                  const char *part)
{
  if (strncmp(key, part, strlen(part)) != 0) return;
  lua_pushlstring(L, head, headlen);
  lua_pushstring(L, key);
  lua_concat(L, 2);
  lua_pushboolean(L, 1);
  lua_rawset(L, out);
}

/* The value a dotted prefix names ("lg.nn" of "lg.nn.Li"), from the globals;
 * nil when a part is not a name. Runs under lua_pcall (__index may raise). */
static void lookup_prefix(lua_State *L, const char *text, const char *sep)
{
  lua_pushglobaltable(L);
  for (const char *p = text; p < sep;) {
    const char *q = p;
    while (q < sep && *q != '.' && *q != ':') q++;
    if (!is_name(p, (size_t)(q - p)) || lua_isnil(L, -1)) {
      lua_pop(L, 1);
      lua_pushnil(L);
      return;
    }
    lua_pushlstring(L, p, (size_t)(q - p));
    lua_gettable(L, -2);
    lua_remove(L, -2);
    p = q + 1;
  }
}

/* collect(text) -> set of completions of text: keywords and global names, or
 * after the last `.` / `:` the fields (for `:` only the functions) of the
 * value the prefix names, with those inherited through metatables (__index
 * tables: classes; a `methods` table: tensors). */
static int collect(lua_State *L)
{
  const char *text = luaL_checkstring(L, 1);
  const char *sep = NULL;
  for (const char *p = text; *p; p++)
    if (*p == '.' || *p == ':') sep = p;
  const char *part = sep ? sep + 1 : text;
  size_t headlen = (size_t)(part - text);
  int methods = sep && *sep == ':';
  lua_newtable(L);
  int out = lua_gettop(L);
  if (!sep) {
    for (int i = 0; lua_keywords[i]; i++) offer(L, out, text, 0, lua_keywords[i], part);
    lua_pushglobaltable(L);
  } else {
    lookup_prefix(L, text, sep);
  }
  for (int depth = 0; depth < 8 && !lua_isnil(L, -1); depth++) {
    if (lua_type(L, -1) == LUA_TTABLE) {
      lua_pushnil(L);
      while (lua_next(L, -2)) {
        size_t kl;
        const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tolstring(L, -2, &kl) : NULL;
        if (k && is_name(k, kl) && (!methods || lua_isfunction(L, -1)))
          offer(L, out, text, headlen, k, part);
        lua_pop(L, 1);
      }
    }
    if (!lua_getmetatable(L, -1)) break;
    lua_pushliteral(L, "__index");
    lua_rawget(L, -2);
    if (lua_type(L, -1) != LUA_TTABLE) {
      lua_pop(L, 1);
      lua_pushliteral(L, "methods");
      lua_rawget(L, -2);
    }
    lua_remove(L, -2);                   /* the metatable */
    lua_remove(L, -2);                   /* the value whose fields were offered */
  }
  lua_settop(L, out);
  return 1;
}

#ifdef LUAGAN_READLINE
static char **matches;                   /* completions not yet handed to readline */
static int nmatch, imatch;

static void drop_matches(void)
{
  for (int i = imatch; i < nmatch; i++) free(matches[i]);
  free(matches);
  matches = NULL;
  nmatch = imatch = 0;
}

static char *next_match(const char *text, int state)
{
  (void)text; (void)state;
  return imatch < nmatch ? matches[imatch++] : NULL;   /* readline frees it */
}

static char **complete(const char *text, int start, int end)
{
  (void)start; (void)end;
  lua_State *L = repl_L;
  rl_attempted_completion_over = 1;      /* never file names */
  rl_completion_append_character = '\0';
  drop_matches();
  if (!L || !lua_checkstack(L, 8)) return NULL;
  int top = lua_gettop(L);
  lua_pushcfunction(L, collect);
  lua_pushstring(L, text);
  if (lua_pcall(L, 1, 1, 0) == LUA_OK && lua_istable(L, -1)) {
    int n = 0;
    lua_pushnil(L);
    while (lua_next(L, -2)) { n++; lua_pop(L, 1); }
    matches = n ? calloc((size_t)n, sizeof *matches) : NULL;
    lua_pushnil(L);
    while (matches && lua_next(L, -2)) {
      char *m = strdup(lua_tostring(L, -2));
      if (m) matches[nmatch++] = m;
      lua_pop(L, 1);
    }
  }
  lua_settop(L, top);
  return nmatch ? rl_completion_matches(text, next_match) : NULL;
}

/* List candidates by their last part (zeros, zeros_like rather than
 * lg.zeros, lg.zeros_like), as the prefix is the same for all of them. */
static void show_matches(char **list, int n, int longest)
{
  (void)longest;
  char **shown = calloc((size_t)n + 2, sizeof *shown);
  if (!shown) { rl_display_match_list(list, n, longest); rl_forced_update_display(); return; }
  int width = 0;
  for (int i = 0; i <= n; i++) {
    const char *m = list[i], *cut = m;
    for (const char *p = m; *p; p++) if (*p == '.' || *p == ':') cut = p + 1;
    shown[i] = (char *)(i == 0 ? m : cut);
    int w = (int)strlen(shown[i]);
    if (i > 0 && w > width) width = w;
  }
  rl_display_match_list(shown, n, width);
  free(shown);
  rl_forced_update_display();
}

static void history_start(void)
{
  const char *f = history_file();
  stifle_history(HISTORY_MAX);
  if (f) read_history(f);                /* a missing file is a first session */
}

/* Keep a line: in memory for the arrow keys and appended to the file at once,
 * so a session that is killed still leaves its lines. */
static void remember(const char *line)
{
  const char *f = history_file();
  add_history(line);
  if (!f) return;
  if (append_history(1, f) != 0) write_history(f);   /* no file yet: create it */
}

static void history_finish(void)
{
  const char *f = history_file();
  if (f) history_truncate_file(f, HISTORY_MAX);
}

static void readline_start(lua_State *L)
{
  use_readline = isatty(0) && isatty(1);
  if (!use_readline) return;
  repl_L = L;
  rl_readline_name = "luagan";           /* for $if luagan in ~/.inputrc */
  rl_basic_word_break_characters = " \t\n\"\\'`@$><=;|&{(}[)],+-*/%^~#";
  rl_attempted_completion_function = complete;
  rl_completion_display_matches_hook = show_matches;
  history_start();
}

static void readline_finish(void)
{
  if (!use_readline) return;
  history_finish();
  drop_matches();
  repl_L = NULL;
}
#else
static void readline_start(lua_State *L) { (void)L; use_readline = 0; }
static void readline_finish(void) {}
#endif

static int incomplete(lua_State *L, int status)
{
  if (status == LUA_ERRSYNTAX) {
    size_t lmsg;
    const char *msg = lua_tolstring(L, -1, &lmsg);
    if (lmsg >= 5 && strcmp(msg + lmsg - 5, "<eof>") == 0) {
      lua_pop(L, 1);
      return 1;
    }
  }
  return 0;
}

static void push_line(lua_State *L, const char *buf, size_t l, int first)
{
  if (first && buf[0] == '=') lua_pushfstring(L, "return %s", buf + 1);  /* Lua 5.1 habit */
  else lua_pushlstring(L, buf, l);
}

static int read_line(lua_State *L, int first)
{
  const char *prompt = first ? "> " : ">> ";
#ifdef LUAGAN_READLINE
  if (use_readline) {
    char *line = readline(prompt);
    if (!line) return 0;
    if (line[0]) remember(line);
    push_line(L, line, strlen(line), first);
    free(line);
    return 1;
  }
#endif
  char buf[MAXINPUT];
  fputs(prompt, stdout);
  fflush(stdout);
  if (!fgets(buf, sizeof buf, stdin)) return 0;
  size_t l = strlen(buf);
  if (l > 0 && buf[l - 1] == '\n') buf[--l] = 0;
  push_line(L, buf, l, first);
  return 1;
}

/* Compile a line, first as an expression to print, then as a statement,
 * reading more lines while the statement is incomplete. Leaves the chunk. */
static int load_line(lua_State *L)
{
  lua_settop(L, 0);
  if (!read_line(L, 1)) return -1;
  const char *line = lua_tostring(L, 1);
  const char *ret = lua_pushfstring(L, "return %s;", line);
  if (luaL_loadbuffer(L, ret, strlen(ret), "=stdin") == LUA_OK) {
    lua_remove(L, -2);                   /* the "return" string */
    lua_remove(L, 1);                    /* the line */
    return LUA_OK;
  }
  lua_pop(L, 2);
  for (;;) {
    size_t len;
    const char *code = lua_tolstring(L, 1, &len);
    int status = luaL_loadbuffer(L, code, len, "=stdin");
    if (!incomplete(L, status)) {
      lua_remove(L, 1);
      return status;
    }
    if (!read_line(L, 0)) {
      lua_pushliteral(L, "incomplete statement at end of input");
      lua_remove(L, 1);
      return LUA_ERRSYNTAX;
    }
    lua_pushliteral(L, "\n");
    lua_insert(L, -2);
    lua_concat(L, 3);
  }
}

static void print_results(lua_State *L)
{
  int n = lua_gettop(L);
  if (n == 0) return;
  luaL_checkstack(L, LUA_MINSTACK, "too many results to print");
  lua_getglobal(L, "print");
  lua_insert(L, 1);
  if (lua_pcall(L, n, 0, 0) != LUA_OK)
    message(lua_pushfstring(L, "error calling 'print' (%s)", lua_tostring(L, -1)));
}

/* The global lg = require "luagan" for the prompt (unless the user's script
 * set one); 0 with a message when it cannot be loaded. */
static int preload_lg(lua_State *L)
{
  lua_getglobal(L, "lg");
  int have = !lua_isnil(L, -1);
  lua_pop(L, 1);
  if (have) return 1;
  lua_getglobal(L, "require");
  lua_pushliteral(L, "luagan");
  if (docall(L, 1, 1) != LUA_OK) {
    const char *msg = lua_tostring(L, -1);
    fprintf(stderr, "luagan: lg is not loaded: %s\n", msg ? msg : "(error object is not a string)");
    lua_pop(L, 1);
    return 0;
  }
  lua_setglobal(L, "lg");
  return 1;
}

static void banner(int lg_loaded)
{
  const char *hist = use_readline ? history_file() : NULL;
  printf("luagan %s (%s)\n", LUAGAN_VERSION, LUA_RELEASE);
  if (lg_loaded)
    printf("lg = require \"luagan\" is loaded (lg.nn, lg.optim, lg.losses, lg.data, ...); "
           "expressions print their values.\n");
  if (use_readline)
    printf("Tab completes names (lg.<Tab>, x:<Tab>); history: %s. Ctrl-D quits.\n",
           hist ? hist : "off ($LUAGAN_HISTORY is empty)");
  else
    printf("Ctrl-D quits.%s\n",
#ifdef LUAGAN_READLINE
           ""
#else
           " (Built without readline: no line editing, history or Tab completion.)"
#endif
           );
  fflush(stdout);
}

static void repl(lua_State *L)
{
  const char *oldprog = progname;
  progname = NULL;
  int status;
  readline_start(L);
  banner(preload_lg(L));
  while ((status = load_line(L)) != -1) {
    if (status == LUA_OK) status = docall(L, 0, LUA_MULTRET);
    if (status == LUA_OK) print_results(L);
    else {
      const char *msg = lua_tostring(L, -1);
      fprintf(stderr, "%s\n", msg ? msg : "(error object is not a string)");
      lua_pop(L, 1);
    }
  }
  lua_settop(L, 0);
  readline_finish();
  fputs("\n", stdout);
  progname = oldprog;
}

static void print_version(void)
{
  printf("luagan %s (%s)\n", LUAGAN_VERSION, LUA_RELEASE);
  fflush(stdout);
}

static void usage(const char *badopt)
{
  fprintf(stderr, "%s: unrecognized option '%s'\n"
          "usage: %s [options] [script [args]]\n"
          "       %s COMMAND [args]    (run, sample, eval, ...: `luagan help` describes them)\n"
          "  -e stat   execute string 'stat'\n"
          "  -i        enter interactive mode after running the script\n"
          "  -v        show version information (and tracebacks for usage errors)\n"
          "  -h, --help  describe the commands and options (= luagan help)\n"
          "  --        stop handling options\n"
          "  -         execute stdin and stop handling options\n",
          progname, badopt, progname, progname);
}

/* OpenMP threads that spin-wait between parallel regions take the cores from
 * the thread with the work whenever a machine has more runnable threads than
 * cores: a 2-thread GAN step under load ran many times slower with libgomp's
 * default spinning than with OMP_WAIT_POLICY=PASSIVE (BENCHMARKS.md has the
 * measurements).
 * libgomp reads the policy once, while it loads, before main(): so when the
 * user chose none, set it and start this program again (exec keeps the pid,
 * arguments and open files). OMP_WAIT_POLICY=active brings spinning back. */
static void passive_openmp(char **argv)
{
  if (getenv("OMP_WAIT_POLICY") || getenv("GOMP_SPINCOUNT")) return;
  if (setenv("OMP_WAIT_POLICY", "PASSIVE", 0)) return;
  execv("/proc/self/exe", argv);
  /* no /proc: run on with libgomp's default (the variable stays for children) */
}

int main(int argc, char **argv)
{
  int has_e = 0, has_i = 0, has_v = 0, help = 0, script = 0, exit_code = 0, i;
  passive_openmp(argv);
  for (i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (a[0] != '-') break;
    if (!strcmp(a, "--")) { i++; break; }
    if (!strcmp(a, "-")) break;
    if (!strcmp(a, "-e")) {
      if (++i >= argc) { usage(a); return EXIT_FAILURE; }
      has_e = 1;
    } else if (!strcmp(a, "-i")) has_i = 1;   /* the prompt's banner names the version */
    else if (!strcmp(a, "-h") || !strcmp(a, "--help")) { help = i; break; }
    else if (!strcmp(a, "-v")) has_v = verbose = 1;
    else { usage(a); return EXIT_FAILURE; }
  }
  if (i < argc) script = i;

  lua_State *L = luaL_newstate();
  if (!L) { message("cannot create Lua state: not enough memory"); return EXIT_FAILURE; }
  setup(L, find_root());
  create_arg(L, argv, argc, script ? script : 0);
  int ok = 1;

  if (help) {                            /* luagan --help == luagan help */
    static char help_word[] = "help";
    argv[help] = help_word;
    int rc = run_command(L, argv, argc, help);
    lua_close(L);
    return rc;
  }
  if (has_v) print_version();
  for (int k = 1; ok && k < (script ? script : argc); k++) {
    if (!strcmp(argv[k], "-e")) {
      const char *code = argv[++k];
      ok = run_chunk(L, luaL_loadbuffer(L, code, strlen(code), "=(command line)"), argv, 0, 0) == LUA_OK;
    }
  }
  if (ok && script) {
    const char *fname = argv[script];
    if (is_command(fname)) {
      int rc = run_command(L, argv, argc, script);
      ok = rc == 0;
      exit_code = rc;          /* a command's own status (130: Ctrl-C, 143: SIGTERM) */
    }
    else {
      if (!strcmp(fname, "-") && strcmp(argv[script - 1], "--")) fname = NULL;  /* stdin */
      ok = run_chunk(L, luaL_loadfile(L, fname), argv, argc, script + 1) == LUA_OK;
    }
  }
  if (ok && has_i) repl(L);
  else if (ok && !script && !has_e && !has_v) {
    if (isatty(0)) repl(L);
    else ok = run_chunk(L, luaL_loadfile(L, NULL), argv, 0, 0) == LUA_OK;
  }
  lua_close(L);
  if (ok) return EXIT_SUCCESS;
  return exit_code > 0 && exit_code < 256 ? exit_code : EXIT_FAILURE;
}
