# ingestd_add_plugin(<kind> <type> SOURCES ... [LIBS ...]) builds a plugin as <kind>_<type>.so,
# linked against the SDK (ingestd::sdk) and exporting only the entry symbol `ingestd_plugin_v1`.
# It is installed into INGESTD_PLUGIN_INSTALL_DIR, where the daemon looks by default.
#
# One definition for both worlds: the source tree includes this file for the core plugins, and
# ingestd-dev installs it beside ingestdConfig.cmake so that a third-party plugin is built with
# exactly the same flags (find_package(ingestd) then ingestd_add_plugin(...)).
# INGESTD_PLUGIN_BUILD_DIR, when set, is where the built .so files land (the source tree puts them
# all in one folder next to the daemon, which looks there too).
function(ingestd_add_plugin kind type)
  cmake_parse_arguments(P "" "" "SOURCES;LIBS" ${ARGN})
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
  # Only the entry symbol is exported: the SDK and every static library stay private.
  target_link_options(${target} PRIVATE -Wl,--no-undefined -Wl,--exclude-libs,ALL)
  install(TARGETS ${target} LIBRARY DESTINATION "${INGESTD_PLUGIN_INSTALL_DIR}")
endfunction()
