# Install layout and Debian packages (CPack). Four packages, one per
# install component:
#   weft-coordinator    the coordinator, the dashboard, its systemd unit
#   weft-worker         the worker, libweft-worker.so.0, weft-worker@.service
#   weft-cli            the weft CLI, its bash completion, the examples
#   libweft-worker-dev  <weft/worker.h>, the .so link, weft-worker.pc
# Build them: cmake -DCMAKE_INSTALL_PREFIX=/usr ... && cmake --build . &&
# cpack -G DEB (tests/package/package_test.sh does, then installs them).

set(WEFT_PKG_DIR ${CMAKE_SOURCE_DIR}/scripts/package)
set(BINDIR ${CMAKE_INSTALL_FULL_BINDIR})
foreach(unit weft-coordinator.service weft-worker@.service)
  configure_file(${WEFT_PKG_DIR}/${unit} ${CMAKE_BINARY_DIR}/package/${unit} @ONLY)
endforeach()
# Units under <prefix>/lib/systemd/system (/usr/lib/systemd/system for
# the packages); configuration under /etc/weft whatever the prefix of a
# package, <prefix>/etc/weft for a plain cmake --install elsewhere.
if(CMAKE_INSTALL_PREFIX STREQUAL "/usr")
  set(WEFT_CONFDIR /etc/weft)
else()
  set(WEFT_CONFDIR ${CMAKE_INSTALL_SYSCONFDIR}/weft)
endif()
install(FILES ${CMAKE_BINARY_DIR}/package/weft-coordinator.service
  DESTINATION lib/systemd/system COMPONENT coordinator)
install(FILES ${CMAKE_BINARY_DIR}/package/weft-worker@.service
  DESTINATION lib/systemd/system COMPONENT worker)
install(FILES ${WEFT_PKG_DIR}/coordinator.conf
  DESTINATION ${WEFT_CONFDIR} COMPONENT coordinator)
install(FILES ${WEFT_PKG_DIR}/worker.conf
  DESTINATION ${WEFT_CONFDIR} COMPONENT worker)
install(FILES ${CMAKE_SOURCE_DIR}/cli/weft.bash-completion
  DESTINATION ${CMAKE_INSTALL_DATADIR}/bash-completion/completions
  RENAME weft COMPONENT cli)
install(FILES ${CMAKE_SOURCE_DIR}/README.md
  DESTINATION ${CMAKE_INSTALL_DATADIR}/doc/weft-coordinator COMPONENT coordinator)
install(FILES ${CMAKE_SOURCE_DIR}/README.md
  DESTINATION ${CMAKE_INSTALL_DATADIR}/doc/weft-worker COMPONENT worker)

set(CPACK_PACKAGE_NAME weft)
set(CPACK_PACKAGE_VENDOR "weft")
set(CPACK_PACKAGE_CONTACT "weft developers <weft@localhost>")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "distributed workflow orchestrator")
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGING_INSTALL_PREFIX ${CMAKE_INSTALL_PREFIX})
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL coordinator worker cli dev)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS ON)
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS_POLICY ">=")

set(CPACK_DEBIAN_COORDINATOR_PACKAGE_NAME weft-coordinator)
set(CPACK_COMPONENT_COORDINATOR_DESCRIPTION
  "weft coordinator: run state machines, scheduling, event log, dashboard")
set(CPACK_DEBIAN_COORDINATOR_PACKAGE_DEPENDS "adduser")
set(CPACK_DEBIAN_COORDINATOR_PACKAGE_RECOMMENDS "weft-cli")

set(CPACK_DEBIAN_WORKER_PACKAGE_NAME weft-worker)
set(CPACK_COMPONENT_WORKER_DESCRIPTION
  "weft worker node and libweft-worker, the library that embeds it")
set(CPACK_DEBIAN_WORKER_PACKAGE_DEPENDS "adduser")

set(CPACK_DEBIAN_CLI_PACKAGE_NAME weft-cli)
set(CPACK_COMPONENT_CLI_DESCRIPTION "weft command line client")

set(CPACK_DEBIAN_DEV_PACKAGE_NAME libweft-worker-dev)
set(CPACK_DEBIAN_DEV_PACKAGE_SECTION libdevel)
set(CPACK_COMPONENT_DEV_DESCRIPTION
  "weft worker SDK: headers, pkg-config file, link to libweft-worker")
set(CPACK_DEBIAN_DEV_PACKAGE_DEPENDS
  "weft-worker (= ${PROJECT_VERSION}), libjansson-dev, pkg-config")

# The system user, and the configuration files kept across upgrades.
file(WRITE ${CMAKE_BINARY_DIR}/package/coordinator/conffiles "/etc/weft/coordinator.conf\n")
file(WRITE ${CMAKE_BINARY_DIR}/package/worker/conffiles "/etc/weft/worker.conf\n")
file(COPY ${WEFT_PKG_DIR}/postinst DESTINATION ${CMAKE_BINARY_DIR}/package/coordinator
  FILE_PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE WORLD_READ WORLD_EXECUTE)
file(COPY ${WEFT_PKG_DIR}/postinst DESTINATION ${CMAKE_BINARY_DIR}/package/worker
  FILE_PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE WORLD_READ WORLD_EXECUTE)
if(CMAKE_INSTALL_PREFIX STREQUAL "/usr")
  set(CPACK_DEBIAN_COORDINATOR_PACKAGE_CONTROL_EXTRA
    ${CMAKE_BINARY_DIR}/package/coordinator/conffiles
    ${CMAKE_BINARY_DIR}/package/coordinator/postinst)
  set(CPACK_DEBIAN_WORKER_PACKAGE_CONTROL_EXTRA
    ${CMAKE_BINARY_DIR}/package/worker/conffiles
    ${CMAKE_BINARY_DIR}/package/worker/postinst)
endif()
include(CPack)
