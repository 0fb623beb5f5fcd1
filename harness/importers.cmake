# Importers of production KVM tracepoint captures and the KVM userspace MSR-exit adapter.
# Included from harness/CMakeLists.txt. Owned by the importer component.

# Line parser, rendering detection and per-vCPU assembly: core types only (fuzzable).
msrtrace_cc_library(
  NAME kvm_trace_parse
  SRCS importers/kvm_trace_parser.cc importers/kvm_trace_assembler.cc
  HDRS importers/kvm_trace_parser.h importers/kvm_trace_assembler.h
  DEPS msrtrace::core absl::status absl::statusor absl::strings absl::flat_hash_map
)

# The streaming importer: passes, snapshot inference, comparison, trace writing, summaries.
msrtrace_cc_library(
  NAME importers
  SRCS importers/kvm_trace_importer.cc
  HDRS importers/kvm_trace_importer.h
  DEPS msrtrace::kvm_trace_parse msrtrace::core msrtrace::machine msrtrace::trace ZLIB::ZLIB
       absl::status
       absl::statusor absl::strings absl::str_format absl::flat_hash_map
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
