/* Compiled by ctest (capi_header_c99) with -std=c99 -Wall -Wextra -Werror -pedantic: the C API
 * header must be strict C99, and every type in it usable from C. */
#include "msrtrace/msrtrace.h"

static int ReadZero(void* ctx, msrtrace_access* a, uint32_t index, uint64_t* value) {
  (void)ctx;
  (void)index;
  *value = msrtrace_access_get_slot(a, 0);
  return MSRTRACE_VERDICT_OK;
}

static int WriteGp(void* ctx, msrtrace_access* a, uint32_t index, uint64_t value) {
  (void)ctx;
  (void)a;
  (void)index;
  (void)value;
  return MSRTRACE_VERDICT_GP;
}

int main(void) {
  char err[128];
  msrtrace_read_fn read = ReadZero;
  msrtrace_write_fn write = WriteGp;
  msrtrace_exit exit;
  msrtrace_regs regs = {{0}, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
  msrtrace_outcome out;
  msrtrace_replay_result result;
  msrtrace_fuzz_stats stats;
  msrtrace_handler_set* set = msrtrace_handler_set_create("reference", err, sizeof err);
  msrtrace_controller* c;
  msrtrace_recorder* r;
  msrtrace_fuzzer* f;
  uint32_t slot = 0;
  const char* seeds[1] = {"seeds"};
  if (set == NULL) return 1;
  msrtrace_handler_set_add_vcpu_slot(set, "S", 0, &slot, err, sizeof err);
  msrtrace_handler_set_add_msr(set, 0x4f000000u, 0x4f000000u, "S", read, write, NULL, err,
                               sizeof err);
  msrtrace_handler_set_register(set, "c99", "C99 check", err, sizeof err);
  c = msrtrace_controller_create_registered("c99", NULL, MSRTRACE_POLICY_INJECT_GP, 1, err,
                                            sizeof err);
  msrtrace_exit_init(&exit, 0);
  msrtrace_controller_handle(c, 0, &exit, &regs, &out, err, sizeof err);
  r = msrtrace_recorder_start(c, "x.trace", NULL, err, sizeof err);
  msrtrace_recorder_close(r, err, sizeof err);
  msrtrace_recorder_destroy(r);
  msrtrace_replay_file("x.trace", NULL, 1, 1, &result, err, sizeof err);
  f = msrtrace_fuzzer_create("c99", err, sizeof err);
  msrtrace_fuzzer_run(f, seeds, 1, 10, 1, &stats, err, sizeof err);
  msrtrace_fuzzer_destroy(f);
  msrtrace_controller_destroy(c);
  msrtrace_handler_set_destroy(set);
  return (int)out.kind + (int)result.events + (int)stats.runs;
}
