# The reference MSR table, the misc/MTRR+PAT/MCE/syscall families, the FIFO device, handler sets
# and table printing (msrtrace::handlers). Included from handlers/CMakeLists.txt.
set(_msrtrace_handlers_deps msrtrace::cpu_profile msrtrace::core msrtrace::time_apic_pv msrtrace::table_handler
    absl::status absl::statusor absl::strings absl::str_format absl::synchronization absl::span
    absl::optional)

msrtrace_cc_library(
  NAME handlers
  SRCS fifo.cc handler_set.cc mce.cc misc.cc msr_table.cc mtrr.cc syscall.cc table_format.cc
       feature_msrs.cc debug.cc pmu.cc nested.cc hyperv.cc
       related_msrs.cc
  HDRS breadth.h hyperv.h fifo.h mce.h misc.h mtrr.h syscall.h table_format.h
  DEPS ${_msrtrace_handlers_deps}
)
# The built-in handler sets and profiles register themselves with the machine layer
# (harness/core/handler_registry.h) from a static initializer in handler_set.cc that nothing refers
# to by name: every user of msrtrace::handlers asks the linker for its anchor symbol, which
# pulls that object out of the archive.
target_link_options(msrtrace_handlers INTERFACE "LINKER:--undefined=msrtrace_builtin_handler_sets")

foreach(_t misc mtrr mce syscall fifo msr_table handler_set table_format breadth hyperv kvm_lists
       row_conformance)
  msrtrace_cc_test(NAME ${_t}_test SRCS ${_t}_test.cc handlers_test_util.h row_sweep.h
                   DEPS msrtrace::handlers msrtrace::core)
endforeach()
