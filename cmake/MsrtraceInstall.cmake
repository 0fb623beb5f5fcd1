# Installation: `cmake --install <build> --prefix <dir>` (or `cpack -G DEB`) puts msrtrace into a
# prefix that other projects use with find_package(msrtrace) or pkg-config (docs/integrating.md).
# Included at the end of the top-level CMakeLists.txt, after every target exists.
#
# Layout (relative to the prefix):
#   bin/msrtrace                        the command-line tool
#   lib/libmsrtrace_*.a                 the libraries (static)
#   include/msrtrace/msrtrace.h         the C API
#   include/msrtrace/{harness/*,handlers,fuzz}/*.h the C++ API (the stable headers below)
#   lib/cmake/msrtrace/                 msrtraceConfig.cmake, ConfigVersion, targets, MsrtraceFuzz.cmake
#   lib/pkgconfig/msrtrace.pc           for non-CMake builds
#   share/msrtrace/fuzz/                fuzzer sources msrtrace_add_fuzzer() compiles, options,
#                                       generated dictionaries, ctest_fuzz.sh
#   share/msrtrace/corpus/golden/       the golden traces (replay regression and fuzz seeds)
#   libexec/msrtrace/fuzz_dict_gen      regenerates the dictionaries from the MSR table
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(MSRTRACE_INSTALL_CMAKEDIR ${CMAKE_INSTALL_LIBDIR}/cmake/msrtrace)
set(MSRTRACE_INSTALL_DATADIR ${CMAKE_INSTALL_DATADIR}/msrtrace)

# --- Umbrella targets: msrtrace::harness (controller, trace, recorder, replay) and
# msrtrace::fuzz (mutator, oracles, fuzz set-up).
add_library(msrtrace_harness INTERFACE)
target_link_libraries(msrtrace_harness INTERFACE msrtrace_core msrtrace_trace msrtrace_replay)
add_library(msrtrace::harness ALIAS msrtrace_harness)
add_library(msrtrace_fuzz INTERFACE)
target_link_libraries(msrtrace_fuzz INTERFACE msrtrace_fuzz_oracles msrtrace_fuzz_mutator)
add_library(msrtrace::fuzz ALIAS msrtrace_fuzz)

# Consumers compile msrtrace's headers as C++17 and find them under include/ (the C API,
# <msrtrace/msrtrace.h>) and include/msrtrace/ (the C++ API, "harness/core/controller.h").
target_compile_features(msrtrace_copts INTERFACE cxx_std_17)
target_include_directories(msrtrace_copts INTERFACE
                           $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>
                           $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}/msrtrace>)

# --- Libraries ---------------------------------------------------------------------------------
# Every library an exported one links, in link order (a consumer of the pkg-config file links
# them in this order).
set(_msrtrace_libs cli_main cli triage capi fuzz_oracles fuzz_mutator workloads importers trace_dat
                   kvm_trace_parse replay kvm_adapter handlers time_apic_pv table_handler cpu_profile
                   trace trace_proto report_proto core)
set(_msrtrace_export_targets msrtrace_copts msrtrace_harness msrtrace_fuzz)
set(_msrtrace_pc_libs "")
foreach(_l ${_msrtrace_libs})
  list(APPEND _msrtrace_export_targets msrtrace_${_l})
  string(APPEND _msrtrace_pc_libs " -lmsrtrace_${_l}")
endforeach()
foreach(_t ${_msrtrace_export_targets})
  string(REGEX REPLACE "^msrtrace_" "" _export_name ${_t})
  set_target_properties(${_t} PROPERTIES EXPORT_NAME ${_export_name})
endforeach()

install(TARGETS ${_msrtrace_export_targets} EXPORT msrtraceTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(TARGETS msrtrace RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(TARGETS fuzz_dict_gen RUNTIME DESTINATION ${CMAKE_INSTALL_LIBEXECDIR}/msrtrace)

# --- Public headers ----------------------------------------------------------------------------
# The stable API: what a VMM includes to write handlers, build a controller, record, replay and
# fuzz. Everything else (table internals, handler families, JSON, proto conversion, importers'
# internals, tools/) is private and may change without notice.
install(FILES ${PROJECT_SOURCE_DIR}/include/msrtrace/msrtrace.h
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/msrtrace)
set(_msrtrace_public_headers
    harness/core/controller.h harness/core/cpu_profile.h harness/core/declared_rows.h
    harness/core/dir_walk.h harness/core/exit.h harness/core/guest_memory.h
    harness/core/handler_registry.h harness/core/msr_filter.h harness/core/msr_handler.h
    harness/core/rng.h
    harness/core/snapshot.h
    harness/core/status_macros.h harness/core/vcpu.h
    harness/trace/trace_file.h harness/trace/trace_text.h harness/trace/trace_types.h
    harness/replay/exit_check.h harness/replay/machine.h harness/replay/recorder.h
    harness/replay/replay.h
    harness/kvm/kvm_adapter.h
    handlers/cpu_profile.h handlers/handler_set.h handlers/msr_table.h
    fuzz/fuzz_hooks.h fuzz/fuzz_setup.h fuzz/oracles.h fuzz/trace_mutator.h tools/cli.h
    triage/differential.h)
foreach(_h ${_msrtrace_public_headers})
  get_filename_component(_dir ${_h} DIRECTORY)
  install(FILES ${PROJECT_SOURCE_DIR}/${_h}
          DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/msrtrace/${_dir})
endforeach()

# --- Fuzz support ------------------------------------------------------------------------------
set(_msrtrace_fuzz_dest ${MSRTRACE_INSTALL_DATADIR}/fuzz)
install(FILES ${PROJECT_SOURCE_DIR}/fuzz/exit_sequence_fuzzer.cc
              ${PROJECT_SOURCE_DIR}/fuzz/reference_hooks.cc
              ${PROJECT_SOURCE_DIR}/fuzz/replay_main.cc
              ${PROJECT_SOURCE_DIR}/fuzz/standalone_main.cc
              ${PROJECT_SOURCE_DIR}/fuzz/exit_sequence_fuzzer.options
              ${PROJECT_BINARY_DIR}/fuzz/trace_binary.dict ${PROJECT_BINARY_DIR}/fuzz/trace_text.dict
        DESTINATION ${_msrtrace_fuzz_dest})
install(PROGRAMS ${PROJECT_SOURCE_DIR}/fuzz/ctest_fuzz.sh ${PROJECT_SOURCE_DIR}/fuzz/run_fuzzer.sh
        DESTINATION ${_msrtrace_fuzz_dest})
# main() of a team's <name>_msrtrace (msrtrace_add_cli compiles it against msrtrace::cli_main).
install(FILES ${PROJECT_SOURCE_DIR}/tools/set_cli_main.cc DESTINATION ${MSRTRACE_INSTALL_DATADIR}/tools)
install(FILES ${PROJECT_SOURCE_DIR}/cmake/MsrtraceFuzz.cmake
        DESTINATION ${MSRTRACE_INSTALL_CMAKEDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/corpus/golden/ DESTINATION ${MSRTRACE_INSTALL_DATADIR}/corpus/golden
        FILES_MATCHING PATTERN "*.trace" PATTERN "*.trace.gz" PATTERN "README.md")

# --- CMake package -----------------------------------------------------------------------------
install(EXPORT msrtraceTargets NAMESPACE msrtrace:: DESTINATION ${MSRTRACE_INSTALL_CMAKEDIR})
configure_package_config_file(${CMAKE_CURRENT_LIST_DIR}/msrtraceConfig.cmake.in
                              ${PROJECT_BINARY_DIR}/msrtraceConfig.cmake
                              INSTALL_DESTINATION ${MSRTRACE_INSTALL_CMAKEDIR}
                              PATH_VARS MSRTRACE_INSTALL_DATADIR)
write_basic_package_version_file(${PROJECT_BINARY_DIR}/msrtraceConfigVersion.cmake
                                 COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/msrtraceConfig.cmake
              ${PROJECT_BINARY_DIR}/msrtraceConfigVersion.cmake
        DESTINATION ${MSRTRACE_INSTALL_CMAKEDIR})

# --- pkg-config --------------------------------------------------------------------------------
# Static libraries: the C++ runtime and every dependency go on Libs (a C program links the C API
# with `cc ... $(pkg-config --libs msrtrace)`).
set(MSRTRACE_PC_LIBS "${_msrtrace_pc_libs}")
file(RELATIVE_PATH MSRTRACE_PC_PREFIX_REL "/p/${CMAKE_INSTALL_LIBDIR}/pkgconfig" "/p")
configure_file(${CMAKE_CURRENT_LIST_DIR}/msrtrace.pc.in ${PROJECT_BINARY_DIR}/msrtrace.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/msrtrace.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

# --- Debian package (cpack -G DEB) -------------------------------------------------------------
# A development package: static libraries, headers, CMake/pkg-config files, the tool. Depends on
# the Debian 12 development packages its exported targets and .pc file name.
set(CPACK_PACKAGE_NAME msrtrace)
set(CPACK_PACKAGE_VENDOR "msrtrace")
set(CPACK_PACKAGE_CONTACT "msrtrace maintainers <msrtrace@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
    "record/replay and libFuzzer harness for x86 MSR VM-exit handlers")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION devel)
set(CPACK_DEBIAN_PACKAGE_DEPENDS
    "libabsl-dev (>= 0~20220623), libprotobuf-dev (>= 3.21), protobuf-compiler (>= 3.21), zlib1g-dev, libstdc++-12-dev, cmake (>= 3.24)")
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "clang-14, libclang-rt-14-dev, pkg-config")
include(CPack)

# --- Tests -------------------------------------------------------------------------------------
# msrtrace_install_consumer: install this build into a fresh prefix, then configure, build and
# run examples/consumer (a separate project using only find_package(msrtrace)) and a pkg-config
# build of the C example. msrtrace_deb_package: cpack -G DEB, check the package's metadata and
# contents, resolve its dependencies with apt (simulated), and build the consumer against its
# unpacked contents. Both run in the clang builds (plain and ASan+UBSan, where the consumer's fuzzers
# are real libFuzzer binaries); the GCC build compiles the same install rules and skips them to
# keep CI short.
if(MSRTRACE_BUILD_TESTS AND NOT CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
  string(REPLACE ";" "," _msrtrace_san_list "${MSRTRACE_SANITIZERS}")
  set(_msrtrace_consumer_env
      "CC=${CMAKE_C_COMPILER}" "CXX=${CMAKE_CXX_COMPILER}"
      "MSRTRACE_SANITIZERS=${_msrtrace_san_list}" "MSRTRACE_BUILD_FUZZERS=${MSRTRACE_REAL_FUZZERS}"
      "MSRTRACE_LAUNCHER=${CMAKE_CXX_COMPILER_LAUNCHER}")
  add_test(NAME msrtrace_install_consumer
           COMMAND ${CMAKE_COMMAND} -E env ${_msrtrace_consumer_env}
                   bash ${PROJECT_SOURCE_DIR}/scripts/install_consumer_test.sh
                   ${PROJECT_BINARY_DIR} ${PROJECT_SOURCE_DIR})
  set_tests_properties(msrtrace_install_consumer PROPERTIES LABELS "e2e;install" TIMEOUT 600)
  # The package of a sanitizer build is of no use to anyone: package plain builds only.
  if(NOT MSRTRACE_SANITIZERS)
    add_test(NAME msrtrace_deb_package
             COMMAND ${CMAKE_COMMAND} -E env ${_msrtrace_consumer_env}
                     bash ${PROJECT_SOURCE_DIR}/scripts/deb_package_test.sh
                     ${PROJECT_BINARY_DIR} ${PROJECT_SOURCE_DIR})
    set_tests_properties(msrtrace_deb_package PROPERTIES LABELS "e2e;install" TIMEOUT 600)
  endif()
endif()
