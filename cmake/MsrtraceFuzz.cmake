# Fuzz-target plumbing (owned by the fuzz component; included from the top-level CMakeLists.txt
# so that examples/ and teams' trees can call msrtrace_add_fuzzer before fuzz/ is processed).
#
# Functions for a team's own handler library (docs/teams.md is the walk-through):
#
#   msrtrace_add_fuzzer(NAME <n> HANDLERS <lib>... [HANDLER_SET <set>] [CORPUS <dir>...]
#                       [CLI <cli>] [DIFFERENTIAL <reference-set> [ALLOWLIST <file>]]
#                       [NO_DEFAULT_SEEDS] [NO_TESTS])
#     NAME        the fuzzer target and binary.
#     HANDLERS    the team's handler libraries; linked whole-archive (their static
#                 RegisterHandlerSet() calls must not be dropped) and coverage-instrumented.
#     HANDLER_SET the set the fuzzer aims at and its seeds name (default: <n>).
#     CORPUS      extra seed directories, added to the default seeds (never replacing them).
#     CLI         name of the CLI built alongside (default: <n> without a trailing "_fuzzer",
#                 plus "_msrtrace": acme_fuzzer -> acme_msrtrace).
#     DIFFERENTIAL  also run every input on this handler set (usually "reference") and report
#                 where the two disagree on an index both implement (triage/differential.h;
#                 docs/fuzzing.md, "Differential fuzzing").
#     ALLOWLIST   the intended deviations from DIFFERENTIAL's set (format in
#                 triage/differential.h); read when the fuzzer starts.
#     NO_DEFAULT_SEEDS  do not generate seeds and dictionary (CORPUS is then the only corpus).
#     NO_TESTS    register no ctests for this fuzzer.
#   Builds, in the calling directory's binary directory (CMAKE_CURRENT_BINARY_DIR):
#     <n>               the exit-sequence fuzzer (structure-aware mutator, every oracle);
#     <cli>             the whole msrtrace CLI with the handler libraries linked in
#                       (msrtrace_add_cli); record/msrs/seeds default to <set>;
#     <n>_replay        `<cli> replay` as its own binary (same flags, output and exit codes);
#     <n>_seeds/        default seeds: `<cli> seeds --handler-set=<set>` (every golden workload
#                       recorded on the set, sweeps of the set's own indices), at build time;
#     <n>.dict          dictionary of the set's indices and names (from the same command);
#     <n>.options       libFuzzer options (fuzz/run_fuzzer.sh passes them; libFuzzer does not
#                       read .options files itself).
#   A finding's report names <n> and the absolute path of <cli> in its reproduce lines.
#   ctests (with MSRTRACE_BUILD_TESTS): <n>_corpus (seeds and CORPUS once), <n>_run (a brief
#   real run, fuzz builds only), <n>_replay_corpus (`<n>_replay --repeat=2` on the seeds).
#
#   msrtrace_add_cli(NAME <cli> HANDLERS <lib>... [HANDLER_SET <set>])
#     Only the CLI: `<cli>` is msrtrace (every subcommand) with the libraries linked in
#     whole-archive; record, msrs and seeds use <set> when --handler-set is not given.
#
# Works from msrtrace's own tree, from a team's tree that does add_subdirectory(msrtrace), and
# from an installed package: the msrtrace sources these functions compile (fuzz/, tools/) are
# found through the global property MSRTRACE_SOURCE_ROOT, captured when this file is included,
# not through a directory-scoped variable.
#
# Build model:
#   MSRTRACE_BUILD_FUZZERS=ON with clang  -> real libFuzzer binaries (link MSRTRACE_FUZZ_ENGINE,
#                                            default -fsanitize=fuzzer); the code under test is
#                                            compiled with -fsanitize=fuzzer-no-link, support
#                                            libraries (.pb.cc, mutator, oracles) are not.
#   otherwise (GCC, or OFF)               -> the same targets linked with fuzz/standalone_main.cc,
#                                            which feeds every corpus file to the target once.
# Either way ctest replays each target's seed corpus (<name>_corpus, label "fuzz-corpus"); with
# real fuzzers it also runs each briefly with a fixed seed (<name>_run, label "fuzz").
#
# OSS-Fuzz / ClusterFuzzLite: pass -DMSRTRACE_FUZZ_ENGINE=$LIB_FUZZING_ENGINE, put the sanitizer
# and coverage flags in CFLAGS/CXXFLAGS and set MSRTRACE_FUZZ_COVERAGE_FLAGS empty, since each
# engine brings its own (libFuzzer: -fsanitize=fuzzer-no-link; AFL++: its compiler wrapper;
# honggfuzz: -fsanitize-coverage=...). fuzz/oss-fuzz/build.sh does. Every configure writes
# msrtrace_fuzz_targets.tsv in msrtrace's top build directory, one line per fuzz target:
#   name <TAB> binary <TAB> source dir <TAB> tests|no-tests <TAB> corpus dirs (;-separated)
# (no-tests: the planted-bug and baseline instruments, which packagers leave out).

include_guard(GLOBAL)
set(MSRTRACE_FUZZ_ENGINE "-fsanitize=fuzzer" CACHE STRING
    "Link flags or library of real fuzz targets (OSS-Fuzz: $LIB_FUZZING_ENGINE)")
set(MSRTRACE_FUZZ_COVERAGE_FLAGS "-fsanitize=fuzzer-no-link" CACHE STRING
    "Coverage instrumentation of the code under test (empty when CFLAGS bring the engine's)")
separate_arguments(MSRTRACE_FUZZ_COVERAGE_OPTIONS UNIX_COMMAND "${MSRTRACE_FUZZ_COVERAGE_FLAGS}")
# Handler code (handlers/, the controller's harness/core, a team's HANDLERS) gets edge coverage
# only. Its fuzzer, the exit-sequence fuzzer, mutates with its own mutator and never calls
# LLVMFuzzerMutate, so libFuzzer's table of recent comparisons (what trace-cmp fills) is never
# read, and value-profile features (the other reader of trace-cmp and indirect-calls) are off
# unless -use_value_profile=1: the callbacks cost about 30 % of its time and guide nothing.
# ON keeps them (campaigns with -use_value_profile=1). Only with the default libFuzzer flags:
# OSS-Fuzz builds bring their own (MSRTRACE_FUZZ_COVERAGE_FLAGS empty).
option(MSRTRACE_FUZZ_HANDLER_CMP "Trace comparisons in handler code for libFuzzer" OFF)
set(MSRTRACE_FUZZ_HANDLER_COVERAGE_OPTIONS ${MSRTRACE_FUZZ_COVERAGE_OPTIONS})
if(NOT MSRTRACE_FUZZ_HANDLER_CMP AND MSRTRACE_FUZZ_COVERAGE_FLAGS STREQUAL "-fsanitize=fuzzer-no-link")
  list(APPEND MSRTRACE_FUZZ_HANDLER_COVERAGE_OPTIONS -fno-sanitize-coverage=trace-cmp,indirect-calls)
endif()
set(MSRTRACE_FUZZ_RUN_SECONDS 10 CACHE STRING "Upper bound of each brief fuzzer run under ctest")
set(MSRTRACE_FUZZ_RUNS 3000 CACHE STRING "Executions of each brief fuzzer run under ctest")

set(MSRTRACE_REAL_FUZZERS OFF)
if(MSRTRACE_BUILD_FUZZERS)
  if(CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    set(MSRTRACE_REAL_FUZZERS ON)
  else()
    message(STATUS "msrtrace: ${CMAKE_CXX_COMPILER_ID} has no libFuzzer; fuzz targets are "
                   "built as standalone corpus replayers")
  endif()
endif()

# An installed package may set MSRTRACE_SOURCE_ROOT (the directory holding fuzz/ and tools/)
# before including this file; otherwise it is this file's source tree.
if(DEFINED MSRTRACE_SOURCE_ROOT)
  set(_msrtrace_root ${MSRTRACE_SOURCE_ROOT})
else()
  get_filename_component(_msrtrace_root ${CMAKE_CURRENT_LIST_DIR}/.. ABSOLUTE)
endif()
set_property(GLOBAL PROPERTY MSRTRACE_SOURCE_ROOT ${_msrtrace_root})
set_property(GLOBAL PROPERTY MSRTRACE_REAL_FUZZERS ${MSRTRACE_REAL_FUZZERS})
# For msrtrace's own CMakeLists (directory scope); the functions below use the properties.
set(MSRTRACE_FUZZ_DIR ${_msrtrace_root}/fuzz)

# _msrtrace_fuzz_context(): sets _root, _fuzz_dir, _real (ON/OFF) in the caller's scope.
macro(_msrtrace_fuzz_context)
  get_property(_root GLOBAL PROPERTY MSRTRACE_SOURCE_ROOT)
  set(_fuzz_dir ${_root}/fuzz)
  get_property(_real GLOBAL PROPERTY MSRTRACE_REAL_FUZZERS)
endmacro()

# msrtrace_fuzz_instrument([HANDLER_CODE] <target>...): compiles the named code-under-test
# libraries with coverage instrumentation for libFuzzer (HANDLER_CODE: edges only, see
# MSRTRACE_FUZZ_HANDLER_CMP). Consumers link with -fsanitize=fuzzer-no-link too, which makes
# the driver provide the coverage callbacks (unit tests in a fuzz build link).
function(msrtrace_fuzz_instrument)
  _msrtrace_fuzz_context()
  if(NOT _real)
    return()
  endif()
  cmake_parse_arguments(ARG "HANDLER_CODE" "" "" ${ARGN})
  set(_options ${MSRTRACE_FUZZ_COVERAGE_OPTIONS})
  if(ARG_HANDLER_CODE)
    set(_options ${MSRTRACE_FUZZ_HANDLER_COVERAGE_OPTIONS})
  endif()
  foreach(t ${ARG_UNPARSED_ARGUMENTS})
    if(NOT TARGET ${t})
      continue()
    endif()
    get_target_property(_type ${t} TYPE)
    if(_type STREQUAL "STATIC_LIBRARY" OR _type STREQUAL "OBJECT_LIBRARY"
       OR _type STREQUAL "SHARED_LIBRARY")
      target_compile_options(${t} PRIVATE ${_options})
      target_link_options(${t} INTERFACE ${MSRTRACE_FUZZ_COVERAGE_OPTIONS})
    endif()
  endforeach()
endfunction()

# msrtrace_fuzz_instrument_dirs([HANDLER_CODE] <dir>...): every msrtrace_* library declared in
# those source directories (already processed), except the generated-protobuf library and
# msrtrace_replay (the machine reset, the exit-checking engine, the recorder and the replay
# driver: the oracles' machinery, not code under test; its branches would be coverage features
# that guide nothing, and their callbacks cost time on every exit).
function(msrtrace_fuzz_instrument_dirs)
  cmake_parse_arguments(ARG "HANDLER_CODE" "" "" ${ARGN})
  set(_kind "")
  if(ARG_HANDLER_CODE)
    set(_kind HANDLER_CODE)
  endif()
  foreach(d ${ARG_UNPARSED_ARGUMENTS})
    get_property(_targets DIRECTORY ${d} PROPERTY BUILDSYSTEM_TARGETS)
    foreach(t ${_targets})
      if(t MATCHES "^msrtrace_" AND NOT t STREQUAL "msrtrace_trace_proto"
         AND NOT t STREQUAL "msrtrace_replay")
        msrtrace_fuzz_instrument(${_kind} ${t})
      endif()
    endforeach()
  endforeach()
endfunction()

# msrtrace_add_fuzz_target(NAME n SRCS .. DEPS .. [CORPUS dir..] [DICT file] [OPTIONS file]
#                          [DEFINES d..] [WHOLE_ARCHIVE lib..] [NO_RUN_TEST] [NO_TESTS])
# Builds `n` (real or standalone), copies/links n.dict and n.options next to it and registers
# the ctests described at the top.
function(msrtrace_add_fuzz_target)
  cmake_parse_arguments(ARG "NO_RUN_TEST;NO_TESTS" "NAME;DICT;OPTIONS"
                        "SRCS;DEPS;CORPUS;DEFINES;WHOLE_ARCHIVE" ${ARGN})
  _msrtrace_fuzz_context()
  set(n ${ARG_NAME})
  add_executable(${n} ${ARG_SRCS})
  target_link_libraries(${n} PRIVATE msrtrace_copts ${ARG_DEPS})
  foreach(lib ${ARG_WHOLE_ARCHIVE})
    target_link_libraries(${n} PRIVATE "$<LINK_LIBRARY:WHOLE_ARCHIVE,${lib}>")
  endforeach()
  if(ARG_DEFINES)
    target_compile_definitions(${n} PRIVATE ${ARG_DEFINES})
  endif()
  if(_real)
    # The target's own source is code under test too (its coverage guides the fuzzer).
    target_compile_options(${n} PRIVATE ${MSRTRACE_FUZZ_COVERAGE_OPTIONS})
    # After the objects on the link line: an engine given as an archive (AFL++'s or honggfuzz's
    # driver) must come after the code whose coverage callbacks it defines.
    separate_arguments(_engine UNIX_COMMAND "${MSRTRACE_FUZZ_ENGINE}")
    target_link_libraries(${n} PRIVATE ${_engine})
  else()
    target_link_libraries(${n} PRIVATE msrtrace_fuzz_standalone_main)
  endif()
  if(ARG_DICT)
    add_custom_command(TARGET ${n} POST_BUILD
                       COMMAND ${CMAKE_COMMAND} -E copy_if_different ${ARG_DICT}
                               $<TARGET_FILE_DIR:${n}>/${n}.dict VERBATIM)
  endif()
  if(ARG_OPTIONS)
    add_custom_command(TARGET ${n} POST_BUILD
                       COMMAND ${CMAKE_COMMAND} -E copy_if_different ${ARG_OPTIONS}
                               $<TARGET_FILE_DIR:${n}>/${n}.options VERBATIM)
  endif()
  set_property(GLOBAL APPEND PROPERTY MSRTRACE_FUZZ_TARGETS ${n})
  set_property(TARGET ${n} PROPERTY MSRTRACE_CORPUS "${ARG_CORPUS}")
  set_property(TARGET ${n} PROPERTY MSRTRACE_FUZZ_NO_TESTS ${ARG_NO_TESTS})

  if(NOT MSRTRACE_BUILD_TESTS OR ARG_NO_TESTS)
    return()
  endif()
  # Seed-corpus replay: every corpus file once, under whatever sanitizers the build has.
  if(_real)
    add_test(NAME ${n}_corpus COMMAND ${n} -runs=0 ${ARG_CORPUS})
  else()
    add_test(NAME ${n}_corpus COMMAND ${n} ${ARG_CORPUS})
  endif()
  set_tests_properties(${n}_corpus PROPERTIES LABELS "fuzz-corpus" TIMEOUT 300)
  # The brief real run: fixed seed, bounded executions and time, new inputs to a scratch dir.
  if(_real AND NOT ARG_NO_RUN_TEST)
    set(_dict_arg "")
    if(ARG_DICT)
      set(_dict_arg -dict=${ARG_DICT})
    endif()
    add_test(NAME ${n}_run
             COMMAND bash ${_fuzz_dir}/ctest_fuzz.sh $<TARGET_FILE:${n}>
                     ${CMAKE_CURRENT_BINARY_DIR}/${n}_run -seed=1 -runs=${MSRTRACE_FUZZ_RUNS}
                     -max_total_time=${MSRTRACE_FUZZ_RUN_SECONDS} ${_dict_arg} -- ${ARG_CORPUS})
    set_tests_properties(${n}_run PROPERTIES LABELS "fuzz" TIMEOUT 120)
  endif()
endfunction()

# msrtrace_add_cli: see the top of this file.
function(msrtrace_add_cli)
  cmake_parse_arguments(ARG "" "NAME;HANDLER_SET" "HANDLERS" ${ARGN})
  _msrtrace_fuzz_context()
  add_executable(${ARG_NAME} ${_root}/tools/set_cli_main.cc)
  target_link_libraries(${ARG_NAME} PRIVATE msrtrace_copts msrtrace::cli_main)
  foreach(lib ${ARG_HANDLERS})
    target_link_libraries(${ARG_NAME} PRIVATE "$<LINK_LIBRARY:WHOLE_ARCHIVE,${lib}>")
  endforeach()
  if(ARG_HANDLER_SET)
    target_compile_definitions(${ARG_NAME} PRIVATE MSRTRACE_CLI_HANDLER_SET="${ARG_HANDLER_SET}")
  endif()
endfunction()

# msrtrace_add_fuzzer: see the top of this file.
function(msrtrace_add_fuzzer)
  cmake_parse_arguments(ARG "NO_DEFAULT_SEEDS;NO_TESTS" "NAME;HANDLER_SET;CLI;DIFFERENTIAL;ALLOWLIST"
                        "HANDLERS;CORPUS" ${ARGN})
  _msrtrace_fuzz_context()
  set(n ${ARG_NAME})
  if(NOT ARG_HANDLER_SET)
    set(ARG_HANDLER_SET ${n})
  endif()
  if(NOT ARG_CLI)
    string(REGEX REPLACE "_fuzzer$" "" _base ${n})
    set(ARG_CLI ${_base}_msrtrace)
  endif()
  msrtrace_fuzz_instrument(HANDLER_CODE ${ARG_HANDLERS})
  msrtrace_add_cli(NAME ${ARG_CLI} HANDLERS ${ARG_HANDLERS} HANDLER_SET ${ARG_HANDLER_SET})

  set(_corpus ${ARG_CORPUS})
  set(_dict_args "")
  if(NOT ARG_NO_DEFAULT_SEEDS)
    set(_seeds ${CMAKE_CURRENT_BINARY_DIR}/${n}_seeds)
    set(_dict ${CMAKE_CURRENT_BINARY_DIR}/${n}_seeds.dict)
    add_custom_command(
      OUTPUT ${_seeds}.stamp ${_dict}
      COMMAND ${CMAKE_COMMAND} -E rm -rf ${_seeds}
      COMMAND ${ARG_CLI} seeds --handler-set=${ARG_HANDLER_SET} --dict=${_dict} ${_seeds}
      COMMAND ${CMAKE_COMMAND} -E touch ${_seeds}.stamp
      DEPENDS ${ARG_CLI}
      COMMENT "Generating seeds and dictionary of handler set ${ARG_HANDLER_SET} for ${n}"
      VERBATIM)
    add_custom_target(${n}_seeds ALL DEPENDS ${_seeds}.stamp ${_dict})
    list(PREPEND _corpus ${_seeds})
    set(_dict_args DICT ${_dict})
  endif()
  set(_test_args "")
  if(ARG_NO_TESTS)
    set(_test_args NO_TESTS)
  endif()
  set(_diff_deps "")
  set(_diff_defines "")
  if(ARG_DIFFERENTIAL)
    set(_diff_deps msrtrace::triage)
    set(_diff_defines MSRTRACE_FUZZ_DIFFERENTIAL="${ARG_DIFFERENTIAL}")
    if(ARG_ALLOWLIST)
      get_filename_component(_allow ${ARG_ALLOWLIST} ABSOLUTE)
      list(APPEND _diff_defines MSRTRACE_FUZZ_ALLOWLIST="${_allow}")
    endif()
  elseif(ARG_ALLOWLIST)
    message(FATAL_ERROR "msrtrace_add_fuzzer(${n}): ALLOWLIST needs DIFFERENTIAL")
  endif()
  msrtrace_add_fuzz_target(
    NAME ${n}
    SRCS ${_fuzz_dir}/exit_sequence_fuzzer.cc ${_fuzz_dir}/reference_hooks.cc
    DEPS msrtrace_fuzz_oracles ${_diff_deps}
    WHOLE_ARCHIVE ${ARG_HANDLERS}
    DEFINES MSRTRACE_FUZZ_HANDLER_SET="${ARG_HANDLER_SET}"
            MSRTRACE_FUZZ_CLI="$<TARGET_FILE:${ARG_CLI}>" ${_diff_defines}
    OPTIONS ${_fuzz_dir}/exit_sequence_fuzzer.options
    ${_dict_args}
    CORPUS ${_corpus}
    ${_test_args})
  if(NOT ARG_NO_DEFAULT_SEEDS)
    add_dependencies(${n} ${n}_seeds)
  endif()

  add_executable(${n}_replay ${_fuzz_dir}/replay_main.cc)
  target_link_libraries(${n}_replay PRIVATE msrtrace_copts msrtrace::cli_main)
  foreach(lib ${ARG_HANDLERS})
    target_link_libraries(${n}_replay PRIVATE "$<LINK_LIBRARY:WHOLE_ARCHIVE,${lib}>")
  endforeach()
  if(MSRTRACE_BUILD_TESTS AND NOT ARG_NO_TESTS AND NOT ARG_NO_DEFAULT_SEEDS)
    add_test(NAME ${n}_replay_corpus COMMAND ${n}_replay --repeat=2 ${_seeds})
    set_tests_properties(${n}_replay_corpus PROPERTIES LABELS "fuzz-corpus")
  endif()
endfunction()

# The fuzz-target manifest described at the top, written once every directory is processed.
function(_msrtrace_write_fuzz_manifest)
  get_property(_targets GLOBAL PROPERTY MSRTRACE_FUZZ_TARGETS)
  set(_lines "")
  foreach(t ${_targets})
    get_target_property(_dir ${t} SOURCE_DIR)
    get_target_property(_corpus ${t} MSRTRACE_CORPUS)
    get_target_property(_no_tests ${t} MSRTRACE_FUZZ_NO_TESTS)
    set(_kind tests)
    if(_no_tests)
      set(_kind no-tests)
    endif()
    string(APPEND _lines "${t}\t$<TARGET_FILE:${t}>\t${_dir}\t${_kind}\t${_corpus}\n")
  endforeach()
  file(GENERATE OUTPUT ${CMAKE_CURRENT_BINARY_DIR}/msrtrace_fuzz_targets.tsv CONTENT "${_lines}")
endfunction()
cmake_language(DEFER CALL _msrtrace_write_fuzz_manifest)  # At the end of the including directory.
