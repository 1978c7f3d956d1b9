# The install layout, and the same layout inside the build tree.
#
#   bin/                 kfleet-controller, kfleet-agent, kctl
#   share/kfleet/image   guest image recipes (deploy/image)
#   share/kfleet/kernel  kernel config fragments (deploy/kernel)
#   share/kfleet/prometheus, grafana, dashboards, cloud, mailhost
#   share/man/man1, man8 (cmake/man.cmake)
#   etc/kfleet/          controller.yaml, agent.yaml (/etc/kfleet for prefix /usr)
#   lib/systemd/system/  kfleet-controller.service, kfleet-agent.service
#
# The binaries find share/kfleet at ../share/kfleet from their own directory. The build tree
# mirrors that: build/share/kfleet/<dir> links to deploy/<dir>, so build/controller/ and an
# installed bin/ resolve the same relative path, wherever the build directory is.

# Folders of deploy/ (and the top-level dashboards/) that go to share/kfleet.
set(KFLEET_SHARE_DIRS image kernel prometheus grafana cloud mailhost)

file(MAKE_DIRECTORY ${PROJECT_BINARY_DIR}/share/kfleet)
foreach(dir ${KFLEET_SHARE_DIRS})
  if(EXISTS ${PROJECT_SOURCE_DIR}/deploy/${dir})
    file(CREATE_LINK ${PROJECT_SOURCE_DIR}/deploy/${dir} ${PROJECT_BINARY_DIR}/share/kfleet/${dir}
         SYMBOLIC)
    install(DIRECTORY deploy/${dir} DESTINATION share/kfleet COMPONENT controller
            USE_SOURCE_PERMISSIONS)
  endif()
endforeach()
if(EXISTS ${PROJECT_SOURCE_DIR}/dashboards)
  file(CREATE_LINK ${PROJECT_SOURCE_DIR}/dashboards ${PROJECT_BINARY_DIR}/share/kfleet/dashboards
       SYMBOLIC)
  install(DIRECTORY dashboards DESTINATION share/kfleet COMPONENT controller)
endif()

# /etc/kfleet and the units: under the prefix, except for a prefix named .../usr, where they go
# beside it (../etc/kfleet, ../lib/systemd/system): /usr gives /etc and /lib/systemd/system, as
# Debian wants; file(INSTALL) adds DESTDIR, which cpack sets to its staging directory. Decided at
# install time, so that `cmake --install build --prefix DIR`, `--prefix /usr` and cpack all get
# it right.
function(kfleet_install_system_files component etc_files unit_files)
  install(CODE "
    if(CMAKE_INSTALL_PREFIX MATCHES \"/usr/?$\")
      get_filename_component(_root \"\${CMAKE_INSTALL_PREFIX}/..\" ABSOLUTE)
      string(REGEX REPLACE \"/$\" \"\" _root \"\${_root}\")
    else()
      set(_root \"\${CMAKE_INSTALL_PREFIX}\")
    endif()
    file(INSTALL ${etc_files} DESTINATION \"\${_root}/etc/kfleet\"
         FILE_PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
    file(INSTALL ${unit_files} DESTINATION \"\${_root}/lib/systemd/system\"
         FILE_PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
    " COMPONENT ${component})
endfunction()

kfleet_install_system_files(controller
  "${PROJECT_SOURCE_DIR}/deploy/etc/controller.yaml"
  "${PROJECT_SOURCE_DIR}/deploy/systemd/kfleet-controller.service")
kfleet_install_system_files(agent
  "${PROJECT_SOURCE_DIR}/deploy/etc/agent.yaml"
  "${PROJECT_SOURCE_DIR}/deploy/systemd/kfleet-agent.service")

# The documentation the man pages point to: share/doc/kfleet/*.md.
file(GLOB _kfleet_docs ${PROJECT_SOURCE_DIR}/docs/*.md)
install(FILES ${PROJECT_SOURCE_DIR}/README.md ${_kfleet_docs} DESTINATION share/doc/kfleet
        COMPONENT controller)
