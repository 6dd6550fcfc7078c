# What `cmake --install` puts where, by package (the CMake component is the Debian package):
#   ingestd      the daemon, ingestctl, ingestd-loadgen, the core plugins (ingestd_add_plugin), the
#                default config, man pages; systemd/CMakeLists.txt adds the unit, sysusers,
#                tmpfiles and D-Bus files
#   dev          ingestd-dev: the SDK headers, the static SDK library and the CMake package
#   kafka        ingestd-plugin-kafka: the plugins that link librdkafka (plugins/sink/kafka,
#                plugins/source/kafka), so that the daemon's package does not depend on it
include(CMakePackageConfigHelpers)

# ingestctl is built and installed by tools/ingestctl; its page goes with it.
if(TARGET ingestctl)
  install(FILES docs/man/ingestctl.1 DESTINATION "${CMAKE_INSTALL_MANDIR}/man1")
endif()
# So is ingestd-loadgen, by tools/loadgen.
if(TARGET ingestd-loadgen)
  install(FILES docs/man/ingestd-loadgen.1 DESTINATION "${CMAKE_INSTALL_MANDIR}/man1")
endif()
install(FILES docs/man/ingestd.8 DESTINATION "${CMAKE_INSTALL_MANDIR}/man8")
# The default pipeline, a conffile in the package (config/pipeline.yaml).
install(FILES config/pipeline.yaml DESTINATION "${CMAKE_INSTALL_FULL_SYSCONFDIR}/ingestd")

set(ingestd_cmake_dir "${CMAKE_INSTALL_LIBDIR}/cmake/ingestd")
install(TARGETS ingestd_sdk EXPORT ingestdTargets
        ARCHIVE DESTINATION "${CMAKE_INSTALL_LIBDIR}" COMPONENT dev)
install(DIRECTORY daemon/include/ingestd DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}" COMPONENT dev)
install(EXPORT ingestdTargets NAMESPACE ingestd:: DESTINATION "${ingestd_cmake_dir}" COMPONENT dev)
configure_package_config_file(cmake/ingestdConfig.cmake.in
  "${CMAKE_CURRENT_BINARY_DIR}/ingestdConfig.cmake" INSTALL_DESTINATION "${ingestd_cmake_dir}")
# A plugin needs the daemon's SDK major and at most its minor (the loader's rule); while the
# version is 0.x every minor is a major.
write_basic_package_version_file("${CMAKE_CURRENT_BINARY_DIR}/ingestdConfigVersion.cmake"
  COMPATIBILITY SameMinorVersion)
install(FILES "${CMAKE_CURRENT_BINARY_DIR}/ingestdConfig.cmake"
              "${CMAKE_CURRENT_BINARY_DIR}/ingestdConfigVersion.cmake"
              cmake/IngestdPlugin.cmake cmake/ingestd-plugin.map cmake/ingestd-host.list
        DESTINATION "${ingestd_cmake_dir}" COMPONENT dev)
