# The generic table handler every family is built from (table_handler.cc), and the time, local
# APIC and KVM paravirtual families on it (included from handlers/CMakeLists.txt).
msrtrace_cc_library(
  NAME table_handler
  SRCS table_handler.cc
  HDRS table_handler.h msr_table.h
  DEPS msrtrace::cpu_profile msrtrace::core absl::status absl::statusor absl::str_format
       absl::span absl::optional
)
msrtrace_cc_library(
  NAME time_apic_pv
  SRCS tsc.cc lapic.cc kvm_pv.cc
  HDRS tsc.h lapic.h kvm_pv.h
  DEPS msrtrace::table_handler msrtrace::cpu_profile msrtrace::core absl::status absl::statusor
       absl::str_format absl::span
)

msrtrace_cc_test(NAME tsc_test SRCS tsc_test.cc DEPS msrtrace::time_apic_pv)
msrtrace_cc_test(NAME lapic_test SRCS lapic_test.cc DEPS msrtrace::time_apic_pv)
msrtrace_cc_test(NAME kvm_pv_test SRCS kvm_pv_test.cc DEPS msrtrace::time_apic_pv)
