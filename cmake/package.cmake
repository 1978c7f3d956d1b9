# Debian packages: `cpack -G DEB` in the build directory (scripts/package.sh does it) makes
#   kfleet        kfleet-controller, kctl, units, /etc/kfleet/controller.yaml, share/kfleet, man
#   kfleet-agent  kfleet-agent, its unit and /etc/kfleet/agent.yaml, its man page
# with dependencies from dpkg-shlibdeps, stripped binaries, and maintainer scripts from
# deploy/debian/<package>/. See docs/install.md.

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME kfleet)
set(CPACK_PACKAGE_VENDOR kfleet)
set(CPACK_PACKAGE_CONTACT "kfleet developers <kfleet@localhost>")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "test Linux kernels on fleets of machines and guests")
# Staged as STAGING/usr, so that /etc/kfleet and the units land in STAGING/etc and
# STAGING/lib/systemd/system (cmake/install.cmake).
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_PACKAGE_DIRECTORY ${PROJECT_BINARY_DIR}/packages)

set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL controller agent)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION admin)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS OFF)

set(_kfleet_deb ${PROJECT_SOURCE_DIR}/deploy/debian)

set(CPACK_DEBIAN_CONTROLLER_PACKAGE_NAME kfleet)
set(CPACK_COMPONENT_CONTROLLER_DESCRIPTION
    "kfleet controller and kctl\n kfleet-controller registers kfleet agents over mutual TLS gRPC, gives them\n commands (build, install and boot kernels, run kselftest, fstests, blktests\n or any command), stores their logs, results and metrics, and brings guests\n up through libvirt. kctl drives it.")
set(CPACK_DEBIAN_CONTROLLER_PACKAGE_DEPENDS "kfleet-agent (= ${PROJECT_VERSION}), adduser")
# The tiny image recipe (busybox, cpio, a Debian kernel fetched with apt) and guests under
# libvirt; a controller that only drives existing hosts needs none of them.
set(CPACK_DEBIAN_CONTROLLER_PACKAGE_RECOMMENDS
    "libvirt-daemon-system, qemu-system-x86, qemu-utils, busybox-static, cpio, socat")
set(CPACK_DEBIAN_CONTROLLER_PACKAGE_SUGGESTS "prometheus, mmdebstrap, linux-source-6.1")
set(CPACK_DEBIAN_CONTROLLER_PACKAGE_CONTROL_EXTRA
    "${_kfleet_deb}/kfleet/postinst;${_kfleet_deb}/kfleet/prerm;${_kfleet_deb}/kfleet/postrm;${_kfleet_deb}/kfleet/conffiles")

set(CPACK_DEBIAN_AGENT_PACKAGE_NAME kfleet-agent)
set(CPACK_COMPONENT_AGENT_DESCRIPTION
    "kfleet agent\n kfleet-agent registers with a kfleet controller and runs its commands on this\n host: kernel builds and installs, reboots, test suites, any command, each in\n a memory cgroup of its own. It streams logs, metrics and kernel events (OOM\n kills above all) back.")
# Kernel builds on a builder host; kselftest installs copy with rsync.
set(CPACK_DEBIAN_AGENT_PACKAGE_SUGGESTS "build-essential, flex, bison, bc, libelf-dev, rsync, kmod")
set(CPACK_DEBIAN_AGENT_PACKAGE_CONTROL_EXTRA
    "${_kfleet_deb}/kfleet-agent/postinst;${_kfleet_deb}/kfleet-agent/prerm;${_kfleet_deb}/kfleet-agent/postrm;${_kfleet_deb}/kfleet-agent/conffiles")

include(CPack)
