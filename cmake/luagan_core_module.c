/* luagan_core_module.c: core.so, the file `require "luagan.core"` loads.
 *
 * The module itself lives in libluagan_lua.so (bindings) over
 * libluagan_runtime.so (runtime), both shared libraries, so that core.so,
 * the luagan executable and every C extension module loaded into one
 * process use the same runtime instance (allocator, grad mode, RNG, error
 * buffer) and the same tensor binding: the dynamic linker loads a library
 * with a given soname once per process.
 *
 * This file defines nothing: Lua looks luaopen_luagan_core up with
 * dlsym(handle of core.so, ...), which searches core.so and then its
 * dependencies, so it finds the one in libluagan_lua.so. The reference
 * below keeps that dependency recorded even under -Wl,--as-needed. */
#include "lgl.h"

int (*const luagan_core_entry)(lua_State *L) = luaopen_luagan_core;
