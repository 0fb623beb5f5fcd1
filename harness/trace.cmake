# The trace format: proto conversions (trace_proto), the framed binary file and the text forms
# (trace_file). Included from harness/CMakeLists.txt.
msrtrace_cc_library(
  NAME trace
  SRCS trace_proto.cc trace_framing.cc trace_file.cc trace_stream.cc trace_text.cc atomic_file.cc
  HDRS trace_proto.h trace_framing.h trace_file.h trace_stream.h trace_text.h atomic_file.h
  DEPS msrtrace::core msrtrace::trace_proto ZLIB::ZLIB absl::status absl::statusor
       absl::strings absl::str_format absl::flat_hash_set
)

msrtrace_cc_test(NAME trace_proto_test SRCS trace_proto_test.cc DEPS msrtrace::trace)
msrtrace_cc_test(NAME trace_file_test SRCS trace_file_test.cc DEPS msrtrace::trace)
