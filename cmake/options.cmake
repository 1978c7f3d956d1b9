# Build options and the one target that carries warnings and sanitizers.
option(KFLEET_WERROR "Treat warnings as errors (CI turns this on)" OFF)
set(KFLEET_SANITIZE "" CACHE STRING "Sanitizers to build with, e.g. address;undefined")

find_program(CCACHE_PROGRAM ccache)
if(CCACHE_PROGRAM)
  set(CMAKE_CXX_COMPILER_LAUNCHER ${CCACHE_PROGRAM})
endif()

add_library(kfleet_warnings INTERFACE)
target_compile_options(kfleet_warnings INTERFACE -Wall -Wextra -Wno-unused-parameter
                       -Wno-missing-field-initializers)
if(KFLEET_WERROR)
  target_compile_options(kfleet_warnings INTERFACE -Werror)
endif()
if(KFLEET_SANITIZE)
  string(REPLACE ";" "," _kfleet_san "${KFLEET_SANITIZE}")
  target_compile_options(kfleet_warnings INTERFACE -fsanitize=${_kfleet_san} -fno-omit-frame-pointer)
  target_link_options(kfleet_warnings INTERFACE -fsanitize=${_kfleet_san})
endif()
