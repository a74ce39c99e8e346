# pristineDeps.cmake - what a program using pristine.h needs besides the header,
# shared by the repository's CMakeLists.txt and the installed pristineConfig.cmake.
#   pristine_find_deps(RESULT_VAR): finds threads and, unless PRISTINE_NO_TLS is
#     true, BearSSL; sets RESULT_VAR to "" when all is there, else to the reason.
#   pristine_add_deps(TARGET): adds them to the INTERFACE of TARGET (threads and
#     BearSSL's library and include directory; with PRISTINE_NO_TLS, the
#     PRISTINE_NO_TLS definition instead of BearSSL).
macro(pristine_find_deps result_var)
  set(THREADS_PREFER_PTHREAD_FLAG ON)
  find_package(Threads REQUIRED)
  set(${result_var} "")
  if(NOT PRISTINE_NO_TLS)
    find_library(PRISTINE_BEARSSL_LIBRARY bearssl)
    find_path(PRISTINE_BEARSSL_INCLUDE_DIR bearssl.h)
    if(NOT PRISTINE_BEARSSL_LIBRARY OR NOT PRISTINE_BEARSSL_INCLUDE_DIR)
      set(${result_var} "BearSSL was not found (Debian: libbearssl-dev); set PRISTINE_NO_TLS to ON to build without TLS")
    endif()
  endif()
endmacro()

function(pristine_add_deps target)
  target_link_libraries(${target} INTERFACE Threads::Threads)
  if(PRISTINE_NO_TLS)
    target_compile_definitions(${target} INTERFACE PRISTINE_NO_TLS)
  else()
    target_link_libraries(${target} INTERFACE ${PRISTINE_BEARSSL_LIBRARY})
    target_include_directories(${target} INTERFACE ${PRISTINE_BEARSSL_INCLUDE_DIR})
  endif()
endfunction()
