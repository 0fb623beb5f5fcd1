# Importers of production KVM tracepoint captures and the KVM userspace MSR-exit adapter.
# Included from harness/CMakeLists.txt. Owned by the importer component.

# Line parser, rendering detection and per-vCPU assembly: core types only (fuzzable).
msrtrace_cc_library(
  NAME kvm_trace_parse
  SRCS importers/kvm_trace_parser.cc importers/kvm_trace_assembler.cc
  HDRS importers/kvm_trace_parser.h importers/kvm_trace_assembler.h
  DEPS msrtrace::core absl::status absl::statusor absl::strings absl::flat_hash_map
)

# trace-cmd's binary trace.dat through libtracecmd/libtraceevent (Debian libtracecmd-dev,
# libtraceevent-dev). Without them the reader is compiled out and says so at run time; text
# import is unaffected. (Found directly, not by pkg-config: libtracecmd.pc requires libtracefs,
# which the reader does not use.)
find_library(MSRTRACE_TRACECMD_LIB NAMES tracecmd)
find_library(MSRTRACE_TRACEEVENT_LIB NAMES traceevent)
find_path(MSRTRACE_TRACEEVENT_INCLUDE NAMES traceevent/event-parse.h)
if(MSRTRACE_TRACECMD_LIB AND MSRTRACE_TRACEEVENT_LIB AND MSRTRACE_TRACEEVENT_INCLUDE)
  set(MSRTRACE_HAVE_TRACECMD ON)
  message(STATUS "msrtrace: libtracecmd found (${MSRTRACE_TRACECMD_LIB}): `msrtrace import` "
                 "reads trace.dat")
else()
  set(MSRTRACE_HAVE_TRACECMD OFF)
  message(WARNING "msrtrace: libtracecmd/libtraceevent not found: `msrtrace import` of a "
                  "trace.dat will fail with a message; text captures still import. Install "
                  "libtracecmd-dev libtraceevent-dev (scripts/deps.sh) and reconfigure.")
endif()
msrtrace_cc_library(
  NAME trace_dat
  SRCS importers/trace_dat_reader.cc
  HDRS importers/trace_dat_reader.h
  DEPS msrtrace::kvm_trace_parse msrtrace::core absl::status absl::strings
)
if(MSRTRACE_HAVE_TRACECMD)
  target_compile_definitions(msrtrace_trace_dat PRIVATE MSRTRACE_HAVE_TRACECMD=1)
  target_include_directories(msrtrace_trace_dat SYSTEM PRIVATE ${MSRTRACE_TRACEEVENT_INCLUDE})
  target_link_libraries(msrtrace_trace_dat PRIVATE ${MSRTRACE_TRACECMD_LIB}
                                                   ${MSRTRACE_TRACEEVENT_LIB})
else()
  target_compile_definitions(msrtrace_trace_dat PRIVATE MSRTRACE_HAVE_TRACECMD=0)
endif()

# The streaming importer: passes, snapshot inference, comparison, trace writing, summaries.
msrtrace_cc_library(
  NAME importers
  SRCS importers/kvm_trace_importer.cc
  HDRS importers/kvm_trace_importer.h
  DEPS msrtrace::kvm_trace_parse msrtrace::trace_dat msrtrace::core msrtrace::machine
       msrtrace::trace ZLIB::ZLIB absl::status absl::statusor absl::strings absl::str_format
       absl::flat_hash_map
)

# struct kvm_run MSR exits <-> Controller (uapi headers from linux-libc-dev).
msrtrace_cc_library(
  NAME kvm_adapter
  SRCS kvm_adapter.cc
  HDRS kvm_adapter.h
  DEPS msrtrace::core absl::status absl::statusor absl::strings absl::str_format
)

msrtrace_cc_test(NAME kvm_trace_parser_test SRCS importers/kvm_trace_parser_test.cc
                 DEPS msrtrace::kvm_trace_parse)
msrtrace_cc_test(NAME kvm_trace_assembler_test SRCS importers/kvm_trace_assembler_test.cc
                 DEPS msrtrace::kvm_trace_parse)
msrtrace_cc_test(NAME kvm_trace_importer_test SRCS importers/kvm_trace_importer_test.cc
                 DEPS msrtrace::importers msrtrace::trace ZLIB::ZLIB)
msrtrace_cc_test(NAME kvm_adapter_test SRCS kvm_adapter_test.cc DEPS msrtrace::kvm_adapter)
msrtrace_cc_test(NAME kvm_trace_shapes_test SRCS importers/kvm_trace_shapes_test.cc
                 DEPS msrtrace::importers msrtrace::trace ZLIB::ZLIB)
msrtrace_cc_test(NAME trace_dat_reader_test SRCS importers/trace_dat_reader_test.cc
                 DEPS msrtrace::importers msrtrace::trace_dat msrtrace::trace)
