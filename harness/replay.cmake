# The recorder (an observer around a Controller that writes traces) and the replay driver
# (machine builder + streaming replay with architectural checks). Owned by the record/replay
# component; included from harness/CMakeLists.txt.
msrtrace_cc_library(
  NAME recorder
  SRCS recorder.cc
  HDRS recorder.h
  DEPS msrtrace::core msrtrace::trace absl::status absl::statusor absl::str_format absl::span
)

msrtrace_cc_library(
  NAME replay
  SRCS replay.cc
  HDRS replay.h
  DEPS msrtrace::core msrtrace::machine msrtrace::trace absl::status absl::statusor
       absl::str_format absl::strings absl::flat_hash_map absl::time absl::optional
)

# The tests replay on the reference handler sets, hence msrtrace::handlers (a test-only edge:
# the libraries above depend on no handler).
msrtrace_cc_test(NAME recorder_test SRCS recorder_test.cc
                 DEPS msrtrace::recorder msrtrace::replay msrtrace::handlers)
msrtrace_cc_test(NAME replay_test SRCS replay_test.cc
                 DEPS msrtrace::recorder msrtrace::replay msrtrace::handlers)

# The machine layer: reset == fresh over the golden corpus, the reset rule for handlers.
msrtrace_cc_test(NAME machine_test SRCS machine_test.cc
                 DEPS msrtrace::machine msrtrace::trace msrtrace::handlers)
if(TARGET machine_test)
  target_compile_definitions(machine_test PRIVATE
                             MSRTRACE_GOLDEN_DIR="${PROJECT_SOURCE_DIR}/corpus/golden")
endif()
msrtrace_cc_test(NAME exit_check_test SRCS exit_check_test.cc
                 DEPS msrtrace::machine msrtrace::handlers)

# Userspace MSR routing and host-initiated events, recorded and replayed end to end.
msrtrace_cc_test(NAME routing_replay_test SRCS routing_replay_test.cc
                 DEPS msrtrace::recorder msrtrace::replay msrtrace::handlers)
