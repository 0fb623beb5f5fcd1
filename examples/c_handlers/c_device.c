/* The "c-device" handler set: see c_device.h. All state lives in slots (never in C globals), so
 * snapshots, replay and the fuzzer's determinism and snapshot-resume oracles see it. */
#include "c_device.h"

#include "msrtrace/msrtrace.h"

/* Slot numbers, filled once by c_device_register (the same for every controller of the set). */
static uint32_t ctrl_slot;     /* VM-wide. */
static uint32_t doorbell_slot; /* Per vCPU. */
static int registered;

static int ReadDevice(void* ctx, msrtrace_access* a, uint32_t index, uint64_t* value) {
  (void)ctx;
  if (index == C_DEVICE_CTRL) {
    *value = msrtrace_access_get_vm_slot(a, ctrl_slot);
  } else {
    *value = msrtrace_access_get_slot(a, doorbell_slot);
  }
  return MSRTRACE_VERDICT_OK;
}

static int WriteDevice(void* ctx, msrtrace_access* a, uint32_t index, uint64_t value) {
  (void)ctx;
  if (index == C_DEVICE_CTRL) {
    if ((value & ~(uint64_t)1) != 0) return MSRTRACE_VERDICT_GP; /* Reserved bits. */
    msrtrace_access_set_vm_slot(a, ctrl_slot, value);
    return MSRTRACE_VERDICT_OK;
  }
  /* Check first, then commit: a fault changes nothing. */
  if ((msrtrace_access_get_vm_slot(a, ctrl_slot) & 1) == 0 || value != 1) {
    return MSRTRACE_VERDICT_GP;
  }
  msrtrace_access_set_slot(a, doorbell_slot, msrtrace_access_get_slot(a, doorbell_slot) + 1);
  return MSRTRACE_VERDICT_OK;
}

int c_device_register(char* err, size_t err_len) {
  msrtrace_handler_set* set;
  int rc;
  if (registered) return MSRTRACE_OK;
  set = msrtrace_handler_set_create("reference", err, err_len);
  if (set == NULL) return MSRTRACE_NOT_FOUND;
  rc = msrtrace_handler_set_add_vm_slot(set, "C_DEVICE_CTRL", 0, &ctrl_slot, err, err_len);
  if (rc == MSRTRACE_OK) {
    rc = msrtrace_handler_set_add_vcpu_slot(set, "C_DEVICE_DOORBELL", 0, &doorbell_slot, err,
                                            err_len);
  }
  if (rc == MSRTRACE_OK) {
    rc = msrtrace_handler_set_add_msr(set, C_DEVICE_CTRL, C_DEVICE_DOORBELL, "C_DEVICE", ReadDevice,
                                      WriteDevice, NULL, err, err_len);
  }
  if (rc == MSRTRACE_OK) {
    rc = msrtrace_handler_set_register(
        set, C_DEVICE_SET, "Example: the reference set plus a doorbell device in C", err, err_len);
  }
  msrtrace_handler_set_destroy(set);
  if (rc == MSRTRACE_OK) registered = 1;
  return rc;
}

/* Registration at load time, so a fuzzer or replayer built by msrtrace_add_fuzzer() finds the
 * set by name (the C counterpart of a C++ static initializer; a GCC/Clang attribute). */
__attribute__((constructor)) static void RegisterAtLoad(void) { c_device_register(NULL, 0); }
