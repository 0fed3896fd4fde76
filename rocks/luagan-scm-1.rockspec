-- luagan as a LuaRocks rock, built with the project's own CMake build.
--
--   luarocks --lua-version 5.4 make rocks/luagan-scm-1.rockspec            # from the source root
--   luarocks --lua-version 5.4 --tree ~/lg make rocks/luagan-scm-1.rockspec
--   eval "$(luarocks --lua-version 5.4 --tree ~/lg path)"; lua5.4 -e 'print(require("luagan").version)'
--
-- What goes where ($(PREFIX) is the rock's own directory in the tree,
-- lib/luarocks/rocks-5.4/luagan/scm-1; LuaRocks moves $(LUADIR), $(LIBDIR)
-- and $(BINDIR) into the tree, everything else stays in $(PREFIX)):
--   $(LUADIR)/luagan/**.lua          -> share/lua/5.4/luagan     require "luagan"
--   $(LIBDIR)/luagan/core.so         -> lib/lua/5.4/luagan       require "luagan.core"
--   $(BINDIR)/luagan                 -> bin/luagan               the executable
--   $(PREFIX)/share/luagan/          scripts/, models/, examples/: the executable's root
--   $(PREFIX)/sdk/lib, sdk/include   libluagan_runtime.so.0, libluagan_lua.so.0 (which
--                                    core.so, the executable and C extensions share),
--                                    headers, cmake/luagan, pkgconfig/luagan.pc
-- A C extension builds against the rock with
--   cmake -DCMAKE_PREFIX_PATH="$(luarocks --lua-version 5.4 show --rock-dir luagan)/sdk" ...
-- (docs/extending.md).
rockspec_format = "3.0"
package = "luagan"
version = "scm-1"

source = {
   url = "git+file:///work/main",   -- `luarocks make` builds the checkout it runs in
}

description = {
   summary = "A GAN framework: C runtime with autograd (double backward) on OpenBLAS, Lua 5.4 face",
   detailed = [[
Float32 tensors, define-by-run autograd with gradients of gradients, CPU kernels on
OpenBLAS, nn modules, optimizers, data loaders, checkpoints (safetensors), and the
`luagan` executable that runs scripts and recipes. Custom layers in Lua (nn.Module),
as Lua autograd functions (lg.Function) or as C ops built against the installed
headers and shared libraries.
]],
   -- license: add when the project picks one
}

dependencies = {
   "lua >= 5.4, < 5.5",
}

-- Checked before the build, so a missing system library is named up front.
-- Debian 12: apt-get install libopenblas-dev zlib1g-dev libstb-dev libpng-dev libjpeg-dev
external_dependencies = {
   OPENBLAS = { library = "openblas" },
   ZLIB = { header = "zlib.h" },
   STB = { header = "stb/stb_image_write.h" },
   PNG = { header = "png.h" },
   JPEG = { header = "jpeglib.h" },
}

build = {
   type = "cmake",
   variables = {
      CMAKE_BUILD_TYPE = "Release",
      CMAKE_INSTALL_PREFIX = "$(PREFIX)",
      CMAKE_INSTALL_BINDIR = "$(BINDIR)",
      CMAKE_INSTALL_LIBDIR = "$(PREFIX)/sdk/lib",          -- not $(LIBDIR): that is for Lua modules
      CMAKE_INSTALL_INCLUDEDIR = "$(PREFIX)/sdk/include",
      LUAGAN_INSTALL_LUADIR = "$(LUADIR)",
      LUAGAN_INSTALL_CMODDIR = "$(LIBDIR)",
      LUAGAN_LUA_INCLUDE = "$(LUA_INCDIR)",
      LUAGAN_SOURCE_ROOT = "$(PREFIX)/share/luagan",     -- the executable never reads the checkout
      LUAGAN_TESTS = "OFF",
   },
}
