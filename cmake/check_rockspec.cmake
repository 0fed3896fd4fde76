# cmake -DSOURCE_DIR=... -DVERSION=... -P cmake/check_rockspec.cmake
# (CTest rock_version): the rockspec in rocks/ is for this version of luagan:
# one rocks/luagan-VERSION-REV.rockspec whose version field is "VERSION-REV"
# and whose source tag is "vVERSION", VERSION being project(VERSION).
file(GLOB specs "${SOURCE_DIR}/rocks/*.rockspec")
list(LENGTH specs n)
if(NOT n EQUAL 1)
  message(FATAL_ERROR "rock_version: expected one rockspec in ${SOURCE_DIR}/rocks, found ${n}: ${specs}")
endif()
get_filename_component(name "${specs}" NAME)
if(NOT name MATCHES "^luagan-([0-9.]+)-([0-9]+)\\.rockspec$")
  message(FATAL_ERROR "rock_version: ${name} is not named luagan-VERSION-REV.rockspec")
endif()
set(file_version "${CMAKE_MATCH_1}")
set(file_rev "${CMAKE_MATCH_2}")
if(NOT file_version STREQUAL VERSION)
  message(FATAL_ERROR "rock_version: ${name} is version ${file_version}; project(VERSION) in "
                      "CMakeLists.txt is ${VERSION}: rename the rockspec and set its version")
endif()
file(STRINGS "${specs}" vline REGEX "^version[ \t]*=")
if(NOT vline MATCHES "^version[ \t]*=[ \t]*\"${VERSION}-${file_rev}\"")
  message(FATAL_ERROR "rock_version: ${name} says '${vline}', expected version = \"${VERSION}-${file_rev}\"")
endif()
file(STRINGS "${specs}" tline REGEX "^[ \t]*tag[ \t]*=")
if(NOT tline MATCHES "\"v${VERSION}\"")
  message(FATAL_ERROR "rock_version: ${name}'s source tag is '${tline}', expected tag = \"v${VERSION}\"")
endif()
message(STATUS "rock_version: ${name} is luagan ${VERSION}")
