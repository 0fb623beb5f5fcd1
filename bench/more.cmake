# Benchmarks of the replay path. Included from bench/CMakeLists.txt.
# replay_bench records its traces with the CLI's workloads (msrtrace::cli RunRecord).
if(TARGET msrtrace_cli)
  add_executable(replay_bench replay_bench.cc)
  target_link_libraries(replay_bench PRIVATE msrtrace_copts msrtrace::cli msrtrace::replay
                        msrtrace::trace msrtrace::trace_proto benchmark::benchmark)
endif()
