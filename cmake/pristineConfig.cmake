# pristineConfig.cmake - find_package(pristine) after `make install` or CMake's
# install of the pristine.h repository. Defines the INTERFACE target
# pristine::pristine: the include directory holding pristine.h, threads and
# BearSSL; with PRISTINE_NO_TLS set to ON before find_package, the
# PRISTINE_NO_TLS definition instead of BearSSL. Exactly one of your source files
# defines PRISTINE_IMPLEMENTATION before it includes pristine.h.
include("${CMAKE_CURRENT_LIST_DIR}/pristineDeps.cmake")
pristine_find_deps(_pristine_why)
if(_pristine_why)
  set(pristine_FOUND FALSE)
  set(pristine_NOT_FOUND_MESSAGE "${_pristine_why}")
elseif(NOT TARGET pristine::pristine)
  get_filename_component(_pristine_prefix "${CMAKE_CURRENT_LIST_DIR}/../../.." ABSOLUTE)
  add_library(pristine::pristine INTERFACE IMPORTED)
  set_target_properties(pristine::pristine PROPERTIES
    INTERFACE_INCLUDE_DIRECTORIES "${_pristine_prefix}/include")
  pristine_add_deps(pristine::pristine)
  unset(_pristine_prefix)
endif()
unset(_pristine_why)
