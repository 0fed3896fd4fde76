/* lgl_sys.c: process services of the training loop, in luagan.core so that
 * the `luagan` executable and a stock lua5.4 with the rock behave the same:
 *
 *   lg.catch_interrupts(true)  SIGINT (Ctrl-C) and SIGTERM (kill, a job
 *                              scheduler, docker stop) set a flag instead of
 *                              ending the process; false puts the previous
 *                              actions back
 *   lg.interrupted()           -> false, or the number of the signal caught
 *                              (2 = SIGINT, 15 = SIGTERM)
 *   lg.clear_interrupt()       forget a caught signal
 *   lg.isatty(fd = 1)          -> is the descriptor a terminal
 *   lg.getpid()                -> the process id
 *
 * The loop polls interrupted() once per step, so a stop request finishes the
 * step, saves a checkpoint and returns. A second signal while the flag is set
 * means "stop now": the default action is restored and the signal re-raised.
 * The handler only writes a sig_atomic_t, so it is safe whichever thread
 * (OpenMP workers included) the signal lands on. */
#include <signal.h>
#include <string.h>
#include <unistd.h>
#include "lgl.h"

static const int STOP_SIGNALS[] = {SIGINT, SIGTERM};
#define NSTOP ((int)(sizeof STOP_SIGNALS / sizeof STOP_SIGNALS[0]))

static volatile sig_atomic_t stop_signal = 0;
static struct sigaction stop_saved[NSTOP];
static int stop_caught = 0;

static void on_stop(int sig)
{
  if (stop_signal) {                       /* second request: give up now */
    signal(sig, SIG_DFL);
    raise(sig);
    return;
  }
  stop_signal = sig;
}

static void restore_actions(int upto)
{
  for (int i = 0; i < upto; i++) sigaction(STOP_SIGNALS[i], &stop_saved[i], NULL);
}

static int sys_catch_interrupts(lua_State *L)
{
  int on = lua_toboolean(L, 1);
  if (on && !stop_caught) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;              /* blocking reads carry on */
    stop_signal = 0;
    for (int i = 0; i < NSTOP; i++) {
      if (sigaction(STOP_SIGNALS[i], &sa, &stop_saved[i]) != 0) {
        restore_actions(i);
        return luaL_error(L, "catch_interrupts: sigaction failed");
      }
    }
    stop_caught = 1;
  } else if (!on && stop_caught) {
    restore_actions(NSTOP);
    stop_caught = 0;
  }
  return 0;
}

static int sys_interrupted(lua_State *L)
{
  int sig = stop_signal;
  if (sig) lua_pushinteger(L, sig);
  else lua_pushboolean(L, 0);
  return 1;
}

static int sys_clear_interrupt(lua_State *L)
{
  (void)L;
  stop_signal = 0;
  return 0;
}

/* decides a progress bar (terminal) or plain lines */
static int sys_isatty(lua_State *L)
{
  lua_pushboolean(L, isatty((int)luaL_optinteger(L, 1, 1)));
  return 1;
}

/* tests signal a training run by it */
static int sys_getpid(lua_State *L)
{
  lua_pushinteger(L, (lua_Integer)getpid());
  return 1;
}

void lgl_open_sys(lua_State *L)
{
  static const luaL_Reg fns[] = {
    {"catch_interrupts", sys_catch_interrupts}, {"interrupted", sys_interrupted},
    {"clear_interrupt", sys_clear_interrupt}, {"isatty", sys_isatty}, {"getpid", sys_getpid},
    {NULL, NULL},
  };
  lgl_setfuncs(L, fns, 0);
}
