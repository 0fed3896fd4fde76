-- luagan as a LuaRocks rock, built with the project's own CMake build.
--
--   luarocks --lua-version 5.4 make rocks/luagan-0.1.0-1.rockspec            # from the source root
--   luarocks --lua-version 5.4 --tree ~/lg make rocks/luagan-0.1.0-1.rockspec
--   eval "$(luarocks --lua-version 5.4 --tree ~/lg path)"; lua5.4 -e 'print(require("luagan").version)'
--
-- `luarocks make` builds the checkout it runs in and never reads source.url;
-- `luarocks install`/`build` of this file fetch the tagged release from it.
-- The version is project(VERSION) of CMakeLists.txt plus the rockspec
-- revision (ctest rock_version checks the two agree: cmake/check_rockspec.cmake).
--
-- What goes where ($(PREFIX) is the rock's own directory in the tree,
-- lib/luarocks/rocks-5.4/luagan/0.1.0-1; LuaRocks moves $(LUADIR), $(LIBDIR)
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
-- (docs/extending.md, "Building and installing").
rockspec_format = "3.0"
package = "luagan"
version = "0.1.0-1"

source = {
   url = "git+https://github.com/luagan/luagan.git",   -- a placeholder until the project is published
   tag = "v0.1.0",
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
   homepage = "https://github.com/luagan/luagan",
   license = "MIT",
   labels = {"machine-learning", "gan", "autograd", "tensor"},
}

dependencies = {
   "lua >= 5.4, < 5.5",
}

-- Checked before the build, so a missing system library is named up front;
-- the directories LuaRocks finds (or the user gives: luarocks make ...
-- OPENBLAS_DIR=/opt/openblas) go to CMake below, whose find_* calls search
-- them first. Lua's own come from LuaRocks' LUA_INCDIR/LUA_LIBDIR.
-- Debian 12: apt-get install libopenblas-dev zlib1g-dev libstb-dev libpng-dev libjpeg-dev
external_dependencies = {
   OPENBLAS = { library = "openblas" },
   ZLIB = { header = "zlib.h", library = "z" },
   STB = { header = "stb/stb_image_write.h", library = "stb" },
   PNG = { header = "png.h", library = "png" },
   JPEG = { header = "jpeglib.h", library = "jpeg" },
}

build = {
   type = "cmake",
   variables = {
      CMAKE_BUILD_TYPE = "Release",
      CMAKE_INSTALL_PREFIX = "$(PREFIX)",
      CMAKE_INSTALL_BINDIR = "$(BINDIR)",
      CMAKE_INSTALL_LIBDIR = "sdk/lib",              -- under $(PREFIX); not $(LIBDIR): that is for Lua modules
      CMAKE_INSTALL_INCLUDEDIR = "sdk/include",
      LUAGAN_INSTALL_LUADIR = "$(LUADIR)",
      LUAGAN_INSTALL_CMODDIR = "$(LIBDIR)",
      LUAGAN_SOURCE_ROOT = "$(PREFIX)/share/luagan",     -- the executable never reads the checkout
      LUAGAN_TESTS = "OFF",
      LUA_INCDIR = "$(LUA_INCDIR)",
      LUA_LIBDIR = "$(LUA_LIBDIR)",
      OPENBLAS_INCDIR = "$(OPENBLAS_INCDIR)",
      OPENBLAS_LIBDIR = "$(OPENBLAS_LIBDIR)",
      ZLIB_INCDIR = "$(ZLIB_INCDIR)",
      ZLIB_LIBDIR = "$(ZLIB_LIBDIR)",
      STB_INCDIR = "$(STB_INCDIR)",
      STB_LIBDIR = "$(STB_LIBDIR)",
      PNG_INCDIR = "$(PNG_INCDIR)",
      PNG_LIBDIR = "$(PNG_LIBDIR)",
      JPEG_INCDIR = "$(JPEG_INCDIR)",
      JPEG_LIBDIR = "$(JPEG_LIBDIR)",
   },
}
