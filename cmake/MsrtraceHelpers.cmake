# Small helpers in the style of absl_cc_library / absl_cc_test. Flags are target-scoped: nothing
# edits CMAKE_CXX_FLAGS globally.

include(CheckCXXCompilerFlag)

# Compile options every msrtrace target gets.
add_library(msrtrace_copts INTERFACE)
# Warnings, -fno-exceptions and the source include paths are for msrtrace's own build only
# (BUILD_INTERFACE); the installed package exports include paths of its own
# (cmake/MsrtraceInstall.cmake).
target_compile_options(msrtrace_copts INTERFACE "$<BUILD_INTERFACE:-Wall;-Wextra;-fno-exceptions>")
if(MSRTRACE_WERROR)
  target_compile_options(msrtrace_copts INTERFACE $<BUILD_INTERFACE:-Werror>)
endif()
target_include_directories(msrtrace_copts INTERFACE $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}>
                                                    $<BUILD_INTERFACE:${PROJECT_BINARY_DIR}>)

if(MSRTRACE_SANITIZERS)
  string(REPLACE ";" "," _msrtrace_san "${MSRTRACE_SANITIZERS}")
  set(CMAKE_REQUIRED_LINK_OPTIONS "-fsanitize=${_msrtrace_san}")
  check_cxx_compiler_flag("-fsanitize=${_msrtrace_san}" MSRTRACE_HAVE_SANITIZERS)
  unset(CMAKE_REQUIRED_LINK_OPTIONS)
  if(NOT MSRTRACE_HAVE_SANITIZERS)
    message(FATAL_ERROR "compiler does not support -fsanitize=${_msrtrace_san}")
  endif()
  target_compile_options(msrtrace_copts INTERFACE
                         "$<BUILD_INTERFACE:-fsanitize=${_msrtrace_san};-fno-sanitize-recover=all;-fno-omit-frame-pointer>")
  target_link_options(msrtrace_copts INTERFACE -fsanitize=${_msrtrace_san})
endif()

# The presets link with LLVM's lld: a full build links ~150 executables (every test binary is
# statically linked against protobuf-using libraries), which lld does about three times faster
# than GNU ld. Only msrtrace's own build: consumers keep their linker.
if(MSRTRACE_LINKER)
  include(CheckLinkerFlag)
  check_linker_flag(CXX "-fuse-ld=${MSRTRACE_LINKER}" MSRTRACE_HAVE_LINKER)
  if(NOT MSRTRACE_HAVE_LINKER)
    message(FATAL_ERROR "MSRTRACE_LINKER=${MSRTRACE_LINKER}: the compiler cannot link with "
                        "-fuse-ld=${MSRTRACE_LINKER} (Debian: apt-get install lld)")
  endif()
  target_link_options(msrtrace_copts INTERFACE "$<BUILD_INTERFACE:-fuse-ld=${MSRTRACE_LINKER}>")
endif()

# msrtrace_cc_library(NAME foo SRCS a.cc HDRS a.h DEPS x y [PUBLIC_DEPS])
# Declares msrtrace_foo with the alias msrtrace::foo.
function(msrtrace_cc_library)
  cmake_parse_arguments(ARG "" "NAME" "SRCS;HDRS;DEPS" ${ARGN})
  set(target msrtrace_${ARG_NAME})
  if(ARG_SRCS)
    add_library(${target} STATIC ${ARG_SRCS} ${ARG_HDRS})
    target_link_libraries(${target} PUBLIC msrtrace_copts ${ARG_DEPS})
    # The headers need C++17: consumers in other trees (add_subdirectory) get it too.
    target_compile_features(${target} PUBLIC cxx_std_17)
  else()
    add_library(${target} INTERFACE)
    target_link_libraries(${target} INTERFACE msrtrace_copts ${ARG_DEPS})
    target_compile_features(${target} INTERFACE cxx_std_17)
  endif()
  add_library(msrtrace::${ARG_NAME} ALIAS ${target})
endfunction()

# msrtrace_cc_test(NAME foo_test SRCS foo_test.cc DEPS msrtrace::foo [LABELS l])
function(msrtrace_cc_test)
  if(NOT MSRTRACE_BUILD_TESTS)
    return()
  endif()
  cmake_parse_arguments(ARG "" "NAME" "SRCS;DEPS;LABELS" ${ARGN})
  add_executable(${ARG_NAME} ${ARG_SRCS})
  target_link_libraries(${ARG_NAME} PRIVATE msrtrace_copts ${ARG_DEPS} GTest::gmock GTest::gtest_main)
  if(MSRTRACE_CTEST_PER_BINARY)
    # One ctest per GoogleTest binary: one process runs all of its tests (CI, scripts/test.sh).
    add_test(NAME ${ARG_NAME} COMMAND ${ARG_NAME})
    set_tests_properties(${ARG_NAME} PROPERTIES LABELS "unit;${ARG_LABELS}"
                         ENVIRONMENT "MSRTRACE_SOURCE_DIR=${PROJECT_SOURCE_DIR}")
  else()
    # One ctest per GoogleTest test (`ctest -R Suite.Name`).
    gtest_discover_tests(${ARG_NAME} DISCOVERY_TIMEOUT 60 PROPERTIES LABELS "unit;${ARG_LABELS}"
                         ENVIRONMENT "MSRTRACE_SOURCE_DIR=${PROJECT_SOURCE_DIR}")
  endif()
endfunction()

if(MSRTRACE_BUILD_TESTS)
  include(GoogleTest)
endif()
