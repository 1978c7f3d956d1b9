# Fuzz targets. Each parser has a `LLVMFuzzerTestOneInput` in a *_fuzz.cc file.
#
#   kfleet_fuzz_target(NAME SOURCES... LIBS... [CORPUS DIR])
#
# always builds NAME_replay, a unit test (label `unit`) that feeds the target every file of CORPUS
# plus 20,000 inputs mutated from them with a fixed seed (common/fuzz/replay_main.cc), so the
# target runs in every CI build. With KFLEET_FUZZ=ON and clang (CC=clang CXX=clang++), NAME is
# also built as a libFuzzer binary:  ./NAME -max_total_time=60 CORPUS_DIR
option(KFLEET_FUZZ "Build libFuzzer binaries of the fuzz targets (needs clang)" OFF)

function(kfleet_fuzz_target name)
  cmake_parse_arguments(F "" "CORPUS" "SOURCES;LIBS" ${ARGN})
  add_executable(${name}_replay ${F_SOURCES} ${PROJECT_SOURCE_DIR}/common/fuzz/replay_main.cc)
  target_link_libraries(${name}_replay PRIVATE ${F_LIBS} kfleet_warnings)
  add_test(NAME ${name}_replay COMMAND ${name}_replay ${F_CORPUS})
  set_tests_properties(${name}_replay PROPERTIES LABELS unit TIMEOUT 300)
  if(KFLEET_FUZZ AND CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    add_executable(${name} ${F_SOURCES})
    target_compile_options(${name} PRIVATE -fsanitize=fuzzer,address,undefined)
    target_link_options(${name} PRIVATE -fsanitize=fuzzer,address,undefined)
    target_link_libraries(${name} PRIVATE ${F_LIBS})
  endif()
endfunction()
