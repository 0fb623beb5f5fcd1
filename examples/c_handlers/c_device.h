/* A small MSR device written in C against the msrtrace C API, on top of the reference handler
 * set (every other MSR passes through to Linux KVM's emulation). Registered as the handler set
 * "c-device" when the library is loaded.
 *
 *   0x4f000100 C_DEVICE_CTRL      VM-wide. Bit 0 enables the device; bits 63:1 are reserved
 *                                 (#GP on a write that sets one).
 *   0x4f000101 C_DEVICE_DOORBELL  Per vCPU. WRMSR rings the doorbell: the count of rings goes
 *                                 up by one; #GP while the device is disabled or for a value
 *                                 other than 1. RDMSR returns the count.
 */
#ifndef MSRTRACE_EXAMPLES_C_HANDLERS_C_DEVICE_H_
#define MSRTRACE_EXAMPLES_C_HANDLERS_C_DEVICE_H_

#include <stddef.h>

#define C_DEVICE_CTRL 0x4f000100u
#define C_DEVICE_DOORBELL 0x4f000101u
#define C_DEVICE_SET "c-device"

/* Registers "c-device" (idempotent; the library's constructor already called it). Returns an
 * msrtrace status code. */
int c_device_register(char* err, size_t err_len);

#endif /* MSRTRACE_EXAMPLES_C_HANDLERS_C_DEVICE_H_ */
