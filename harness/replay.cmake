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
  DEPS msrtrace::core msrtrace::trace msrtrace::handlers absl::status absl::statusor
       absl::str_format absl::strings absl::flat_hash_map absl::time absl::optional
)

msrtrace_cc_test(NAME recorder_test SRCS recorder_test.cc
                 DEPS msrtrace::recorder msrtrace::replay)
msrtrace_cc_test(NAME replay_test SRCS replay_test.cc
                 DEPS msrtrace::recorder msrtrace::replay)
