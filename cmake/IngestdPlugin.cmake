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
#
# Boost.Asio on the daemon's io_context (Context::io()). Asio keeps process-wide state in statics
# of header templates: the per-thread call stack that tells which scheduler runs on this thread
# (keyword_tss_ptr<call_stack<thread_context, thread_info_base>::context>::value_, a __thread
# variable) and the service ids (execution_context_service_base<Service>::id). A plugin compiles
# its own copy of each; if they stayed private, the plugin's Asio code would find no scheduler on
# the daemon's io threads (a null dereference in the reactor on the first socket event). Asio
# declares its namespace with default visibility (its push_options.hpp), so these statics are
# exportable despite -fvisibility=hidden; GCC emits them as STB_GNU_UNIQUE. The plugin's version
# script exports exactly these names (ingestd-plugin.map) and the executable exports the same
# ones (ingestd_plugin_host(), ingestd-host.list): the dynamic linker binds every plugin's
# references to the executable's definitions, one per process. Everything else stays hidden: two
# plugins may define the same internal names. Plugins need the daemon's Boost version and no
# BOOST_ASIO_* macros that change Asio's layout, as they run their Asio code on the daemon's
# objects.
#
# A plugin is never unmapped (-z nodelete): Asio services it creates in the shared io_context
# (its socket and resolver services, the resolver's thread, timers' queues) live until the
# daemon ends, and their code is the plugin's.
set(INGESTD_PLUGIN_VERSION_SCRIPT "${CMAKE_CURRENT_LIST_DIR}/ingestd-plugin.map")
set(INGESTD_HOST_DYNAMIC_LIST "${CMAKE_CURRENT_LIST_DIR}/ingestd-host.list")

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
  # The source tree's unit tests link these modules' objects (tests/CMakeLists.txt).
  set_property(GLOBAL APPEND PROPERTY INGESTD_PLUGIN_TARGETS ${target})
  # Only the entry symbol and Asio's process-wide state are exported: the SDK, every static
  # library and the instances of standard library templates stay private.
  target_link_options(${target} PRIVATE -Wl,--no-undefined -Wl,--exclude-libs,ALL -Wl,-z,nodelete
                      "-Wl,--version-script=${INGESTD_PLUGIN_VERSION_SCRIPT}")
  set_property(TARGET ${target} APPEND PROPERTY LINK_DEPENDS "${INGESTD_PLUGIN_VERSION_SCRIPT}")
  if(P_COMPONENT)
    install(TARGETS ${target} LIBRARY DESTINATION "${INGESTD_PLUGIN_INSTALL_DIR}"
            COMPONENT ${P_COMPONENT})
  else()
    install(TARGETS ${target} LIBRARY DESTINATION "${INGESTD_PLUGIN_INSTALL_DIR}")
  endif()
endfunction()

# ingestd_plugin_host(<executable>) makes an executable that loads plugins export Boost.Asio's
# process-wide state (and nothing else), so that the Asio code of the plugins it loads runs on its
# io_context (see above).
function(ingestd_plugin_host target)
  target_link_options(${target} PRIVATE "-Wl,--dynamic-list=${INGESTD_HOST_DYNAMIC_LIST}")
  set_property(TARGET ${target} APPEND PROPERTY LINK_DEPENDS "${INGESTD_HOST_DYNAMIC_LIST}")
endfunction()
