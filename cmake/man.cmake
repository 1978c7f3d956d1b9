# Man pages, printed by the programs themselves (--man) from the same tables as their --help:
# kfleet-controller(8), kfleet-agent(8) and kctl(1) in ${PROJECT_BINARY_DIR}/man, as roff and
# gzipped (-9n: the same bytes for the same version) for share/man. Also the `unit` tests that
# keep deploy/etc/*.yaml equal to each daemon's --print-config and check each page.
#
# Run as a script, this file does one step for those rules:
#   cmake -DMODE=render -DBIN=PROGRAM -DOUT=PAGE -P man.cmake
#       PROGRAM --man > PAGE, and PAGE.gz.
#   cmake -DMODE=config -DBIN=PROGRAM -DEXPECTED=FILE -DWORK=DIR -P man.cmake
#       fails, with a diff, unless PROGRAM --print-config prints FILE.
#   cmake -DMODE=check -DBIN=PROGRAM -DNAME=NAME -DSECTION=N -DVERSION=V -DVERSION_ARG=ARG
#         -DWORK=DIR [-DSOURCE=main.cc] [-DGROFF=groff] -P man.cmake
#       fails unless the page has its .TH line, PROGRAM ARG says "NAME V", every ABSL_FLAG of
#       SOURCE is in the page and in --help (else every command of PROGRAM --help has its own
#       subsection), and groff, if given, renders the page without a warning.

if(CMAKE_SCRIPT_MODE_FILE)
  function(kfleet_run out)
    execute_process(COMMAND ${ARGN} OUTPUT_VARIABLE _out ERROR_VARIABLE _err RESULT_VARIABLE _rc)
    if(NOT _rc EQUAL 0)
      message(FATAL_ERROR "${ARGN}: exit status ${_rc}\n${_err}")
    endif()
    set(${out} "${_out}" PARENT_SCOPE)
  endfunction()

  function(kfleet_require haystack needle what)
    string(FIND "${haystack}" "${needle}" _at)
    if(_at EQUAL -1)
      message(SEND_ERROR "${what}: \"${needle}\" is missing")
    endif()
  endfunction()

  if(MODE STREQUAL "render")
    kfleet_run(page ${BIN} --man)
    file(WRITE ${OUT} "${page}")
    execute_process(COMMAND gzip -9n INPUT_FILE ${OUT} OUTPUT_FILE ${OUT}.gz RESULT_VARIABLE rc)
    if(NOT rc EQUAL 0)
      message(FATAL_ERROR "gzip ${OUT}: exit status ${rc}")
    endif()

  elseif(MODE STREQUAL "config")
    kfleet_run(got ${BIN} --print-config)
    file(READ ${EXPECTED} want)
    if(NOT got STREQUAL want)
      file(MAKE_DIRECTORY ${WORK})
      get_filename_component(name ${EXPECTED} NAME)
      file(WRITE ${WORK}/${name} "${got}")
      execute_process(COMMAND diff -u ${EXPECTED} ${WORK}/${name})
      message(FATAL_ERROR "${EXPECTED} is not what the program prints; write it again with\n"
                          "  ${BIN} --print-config > ${EXPECTED}")
    endif()

  elseif(MODE STREQUAL "check")
    kfleet_run(page ${BIN} --man)
    kfleet_run(help ${BIN} --help)
    kfleet_run(version ${BIN} ${VERSION_ARG})
    string(TOUPPER "${NAME}" upper)
    kfleet_require("${page}" ".TH \"${upper}\" \"${SECTION}\" \"\" \"kfleet ${VERSION}\"" "${NAME} --man")
    if(NOT version STREQUAL "${NAME} ${VERSION}\n")
      message(SEND_ERROR "${NAME} ${VERSION_ARG} printed \"${version}\", not \"${NAME} ${VERSION}\"")
    endif()
    if(SOURCE)
      file(READ ${SOURCE} source)
      string(REGEX MATCHALL "ABSL_FLAG\\([^,]+,[ \t\r\n]*[a-z0-9_]+" flags "${source}")
      if(NOT flags)
        message(SEND_ERROR "${SOURCE} defines no ABSL_FLAG")
      endif()
      foreach(flag IN LISTS flags)
        string(REGEX REPLACE ".*[ \t\r\n,]([a-z0-9_]+)$" "\\1" flag "${flag}")
        string(REPLACE "_" "-" dashed "${flag}")
        string(REPLACE "-" "\\-" escaped "--${dashed}")
        kfleet_require("${page}" "\\fB${escaped}\\fR" "${NAME} --man")
        kfleet_require("${help}" "  --${dashed}" "${NAME} --help")
      endforeach()
    else()
      # kctl: "COMMANDS" then one "    NAME   SUMMARY" line per command.
      string(REPLACE ";" "," lines "${help}")
      string(REPLACE "\n" ";" lines "${lines}")
      set(in_commands FALSE)
      set(commands 0)
      foreach(line IN LISTS lines)
        if(line STREQUAL "COMMANDS")
          set(in_commands TRUE)
        elseif(in_commands AND line MATCHES "^    ([a-z-]+) ")
          kfleet_require("${page}" ".SS \"${CMAKE_MATCH_1}\"" "${NAME} --man")
          math(EXPR commands "${commands} + 1")
        elseif(in_commands)
          break()
        endif()
      endforeach()
      if(commands EQUAL 0)
        message(SEND_ERROR "${NAME} --help lists no commands")
      endif()
    endif()
    if(GROFF)
      file(MAKE_DIRECTORY ${WORK})
      file(WRITE ${WORK}/${NAME}.${SECTION} "${page}")
      execute_process(COMMAND ${GROFF} -man -Tutf8 -ww -z ${WORK}/${NAME}.${SECTION}
                      ERROR_VARIABLE warnings RESULT_VARIABLE rc)
      if(NOT rc EQUAL 0 OR NOT warnings STREQUAL "")
        message(SEND_ERROR "groff on ${NAME}(${SECTION}): exit status ${rc}\n${warnings}")
      endif()
    endif()

  else()
    message(FATAL_ERROR "man.cmake: MODE must be render, config or check")
  endif()
  return()
endif()

find_program(KFLEET_GROFF groff)
set(_kfleet_man_script ${CMAKE_CURRENT_LIST_FILE})
set(_kfleet_man_dir ${PROJECT_BINARY_DIR}/man)
set(_kfleet_man_gz)
# program, section, install component, how it prints its version, the main.cc whose flags the
# page must list (- for none)
foreach(_page "kfleet-controller;8;controller;--version;controller/main.cc"
              "kfleet-agent;8;agent;--version;agent/main.cc"
              "kctl;1;controller;version;-")
  list(GET _page 0 _name)
  list(GET _page 1 _section)
  list(GET _page 2 _component)
  list(GET _page 3 _version_arg)
  list(GET _page 4 _source)
  set(_out ${_kfleet_man_dir}/${_name}.${_section})
  add_custom_command(
    OUTPUT ${_out} ${_out}.gz
    COMMAND ${CMAKE_COMMAND} -E make_directory ${_kfleet_man_dir}
    COMMAND ${CMAKE_COMMAND} -DMODE=render -DBIN=$<TARGET_FILE:${_name}> -DOUT=${_out}
            -P ${_kfleet_man_script}
    DEPENDS ${_name} ${_kfleet_man_script}
    COMMENT "Rendering ${_name}(${_section})"
    VERBATIM)
  list(APPEND _kfleet_man_gz ${_out}.gz)
  install(FILES ${_out}.gz DESTINATION share/man/man${_section} COMPONENT ${_component})

  set(_check_source)
  if(NOT _source STREQUAL "-")
    set(_check_source -DSOURCE=${PROJECT_SOURCE_DIR}/${_source})
  endif()
  add_test(NAME ${_name}_man_page
           COMMAND ${CMAKE_COMMAND} -DMODE=check -DBIN=$<TARGET_FILE:${_name}> -DNAME=${_name}
                   -DSECTION=${_section} -DVERSION=${PROJECT_VERSION} -DVERSION_ARG=${_version_arg}
                   -DWORK=${PROJECT_BINARY_DIR}/man-check ${_check_source}
                   -DGROFF=${KFLEET_GROFF} -P ${_kfleet_man_script})
  set_tests_properties(${_name}_man_page PROPERTIES LABELS unit)
endforeach()
add_custom_target(man ALL DEPENDS ${_kfleet_man_gz})

# deploy/etc/*.yaml are what the daemons print with --print-config.
foreach(_daemon controller agent)
  add_test(NAME kfleet-${_daemon}_print_config
           COMMAND ${CMAKE_COMMAND} -DMODE=config -DBIN=$<TARGET_FILE:kfleet-${_daemon}>
                   -DEXPECTED=${PROJECT_SOURCE_DIR}/deploy/etc/${_daemon}.yaml
                   -DWORK=${PROJECT_BINARY_DIR}/man-check -P ${_kfleet_man_script})
  set_tests_properties(kfleet-${_daemon}_print_config PROPERTIES LABELS unit)
endforeach()
