# ingestd_add_plugin(<kind> <type> SOURCES ... [LIBS ...] [COMPONENT <name>]) builds a plugin as
# <kind>_<type>.so, linked against the SDK (ingestd::sdk) and LIBS, exporting only the entry symbol
# `ingestd_plugin_v1`. It is installed into INGESTD_PLUGIN_INSTALL_DIR, where the daemon looks by
# default, in the install COMPONENT when given (a plugin packaged on its own, such as the Kafka
# plugins in ingestd-plugin-kafka), else in the default component.
#
# One definition for both worlds: the source tree includes this file for the core plugins, and
# ingestd-dev installs it beside ingestdConfig.cmake so that a third-party plugin is built with
# exactly the same flags (find_package(ingestd) then ingestd_add_plugin(...)).
# INGESTD_PLUGIN_BUILD_DIR, when set, is where the built .so files land (the source tree puts them
# all in one folder next to the daemon, which looks there too).
set(INGESTD_PLUGIN_VERSION_SCRIPT "${CMAKE_CURRENT_LIST_DIR}/ingestd-plugin.map")

function(ingestd_add_plugin kind type)
  cmake_parse_arguments(P "" "COMPONENT" "SOURCES;LIBS" ${ARGN})
  set(target "${kind}_${type}")
  add_library(${target} MODULE ${P_SOURCES})
  set_target_properties(${target} PROPERTIES
    PREFIX ""
    CXX_STANDARD 20
    CXX_STANDARD_REQUIRED ON
    CXX_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON)
  if(INGESTD_PLUGIN_BUILD_DIR)
    set_target_properties(${target} PROPERTIES LIBRARY_OUTPUT_DIRECTORY "${INGESTD_PLUGIN_BUILD_DIR}")
  endif()
  target_link_libraries(${target} PRIVATE ingestd::sdk ${P_LIBS})
  # Only the entry symbol is exported: the SDK, every static library and the instances of
  # standard library templates stay private.
  target_link_options(${target} PRIVATE -Wl,--no-undefined -Wl,--exclude-libs,ALL
                      "-Wl,--version-script=${INGESTD_PLUGIN_VERSION_SCRIPT}")
  set_property(TARGET ${target} APPEND PROPERTY LINK_DEPENDS "${INGESTD_PLUGIN_VERSION_SCRIPT}")
  if(P_COMPONENT)
    install(TARGETS ${target} LIBRARY DESTINATION "${INGESTD_PLUGIN_INSTALL_DIR}"
            COMPONENT ${P_COMPONENT})
  else()
    install(TARGETS ${target} LIBRARY DESTINATION "${INGESTD_PLUGIN_INSTALL_DIR}")
  endif()
endfunction()
