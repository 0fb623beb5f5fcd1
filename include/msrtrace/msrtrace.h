/* msrtrace C API (C99): MSR exit handlers written in C, Rust or any language with a C FFI,
 * plugged into msrtrace's controller, recorder, replay driver and exit-sequence fuzzer.
 *
 * The C API is a thin layer over the C++ library (harness/core/controller.h,
 * harness/replay/recorder.h, harness/replay/replay.h, fuzz/oracles.h); the semantics are the same
 * and documented there. No C++ type and no exception crosses this boundary.
 *
 * Objects. Every object is opaque and created and destroyed through this API:
 *   msrtrace_handler_set   a description of MSR handlers: callbacks at MSR indices, the state
 *                          slots they keep, and optionally a registered base set ("reference")
 *                          installed first, which serves every index the callbacks leave free.
 *   msrtrace_controller    a machine built from a handler set and a CPU profile: the MSR exit
 *                          controller, its vCPUs (their MSR state) and sparse guest memory.
 *   msrtrace_recorder      records the exits handled through it to a trace file.
 *   msrtrace_fuzzer        the exit-sequence fuzzer (structure-aware mutator and every oracle)
 *                          over a registered handler set.
 * A handler set registered with msrtrace_handler_set_register() is named in trace headers, so
 * `msrtrace replay`, msrtrace_replay_file() and the fuzzers rebuild the same machine.
 *
 * Errors. Fallible functions return an msrtrace_status code. When it is not MSRTRACE_OK and
 * `err` is not NULL, a one-line NUL-terminated message (truncated to `err_len` bytes) is written
 * to `err`. On success `err` is left untouched. Functions that return a pointer return NULL on
 * error.
 *
 * Ownership. The caller owns every object a *_create / *_start function returns and releases
 * it with the matching *_destroy (NULL is accepted). Strings passed in are copied; strings
 * returned point into the object and stay valid until it is destroyed. The `ctx` pointer given
 * with a callback is never dereferenced or freed by msrtrace; it must stay valid as long as any
 * controller built from the set lives, and forever once the set is registered (registered sets
 * are never removed).
 *
 * Thread-safety. A handler set, controller, recorder or fuzzer must not be used from two
 * threads at once (exits of one VM are handled one at a time, as KVM serializes them).
 * Different objects may be used concurrently, and msrtrace_handler_set_register() is
 * thread-safe. Callbacks may run on any thread that calls into this API; a registered set's
 * callbacks may run concurrently for different controllers, so a callback keeps its state in
 * slots (see below), not in `ctx`.
 *
 * Handler rules (as for C++ handlers, harness/core/msr_handler.h):
 *   - A callback decides; the controller acts. It returns MSRTRACE_VERDICT_OK (read: *value is
 *     the result; write: accepted), MSRTRACE_VERDICT_GP (#GP(0) is injected), or
 *     MSRTRACE_VERDICT_UNSUPPORTED (the controller's unknown-MSR policy applies). It never
 *     touches registers or RIP: the controller writes EDX:EAX and advances RIP.
 *   - State lives in 64-bit slots reserved with msrtrace_handler_set_add_vcpu_slot() /
 *     _add_vm_slot(), so snapshots, replay and the determinism and snapshot-resume oracles see
 *     all of it. A callback that keeps state elsewhere cannot be replayed.
 *   - Fault atomicity: a callback that returns GP or UNSUPPORTED has changed nothing.
 *   - MSRTRACE_VERDICT_VMM_ERROR stops the VM (the exit fails with MSRTRACE_INTERNAL).
 */
#ifndef MSRTRACE_MSRTRACE_H_
#define MSRTRACE_MSRTRACE_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Status codes ------------------------------------------------------------------------ */

enum {
  MSRTRACE_OK = 0,
  MSRTRACE_INVALID_ARGUMENT = 1,    /* Bad argument, unknown profile, corrupt snapshot. */
  MSRTRACE_NOT_FOUND = 2,           /* Unknown handler set; unknown MSR under the fail policy. */
  MSRTRACE_ALREADY_EXISTS = 3,      /* MSR index or set name taken. */
  MSRTRACE_FAILED_PRECONDITION = 4, /* Call in the wrong state. */
  MSRTRACE_DATA_LOSS = 5,           /* Corrupt or unreadable trace. */
  MSRTRACE_NOT_HANDLED = 6,         /* The exit is not RDMSR/WRMSR: try the next controller. */
  MSRTRACE_DIVERGED = 7,            /* Replay ran and found divergences. */
  MSRTRACE_FINDING = 8,             /* The fuzzer found an oracle failure. */
  MSRTRACE_RESOURCE_EXHAUSTED = 9,  /* A fixed limit was reached (see the function). */
  MSRTRACE_INTERNAL = 10            /* A handler's VMM error, an I/O error, anything else. */
};

/* A short name of a status code ("ok", "not-found"...). Never NULL. */
const char* msrtrace_status_name(int status);

/* ---- Handler callbacks ------------------------------------------------------------------- */

enum {
  MSRTRACE_VERDICT_OK = 0,
  MSRTRACE_VERDICT_GP = 1,
  MSRTRACE_VERDICT_UNSUPPORTED = 2,
  MSRTRACE_VERDICT_VMM_ERROR = 3
};

/* What a callback may see and change during one access. Valid only during the callback. */
typedef struct msrtrace_access msrtrace_access;

uint32_t msrtrace_access_vcpu_id(const msrtrace_access* a);
/* 1 for accesses the VMM makes itself (KVM_SET_MSRS, snapshot restore), else 0. */
int msrtrace_access_host_initiated(const msrtrace_access* a);
/* Host TSC and wall clock (ns) at the exit, as recorded; the only time a handler may use. */
uint64_t msrtrace_access_host_tsc(const msrtrace_access* a);
uint64_t msrtrace_access_host_wall_ns(const msrtrace_access* a);
/* Per-vCPU and VM-wide slots, by the number msrtrace_handler_set_add_*_slot() returned.
 * REQUIRES: `slot` was returned for this handler set. */
uint64_t msrtrace_access_get_slot(const msrtrace_access* a, uint32_t slot);
void msrtrace_access_set_slot(msrtrace_access* a, uint32_t slot, uint64_t value);
uint64_t msrtrace_access_get_vm_slot(const msrtrace_access* a, uint32_t slot);
void msrtrace_access_set_vm_slot(msrtrace_access* a, uint32_t slot, uint64_t value);
/* Guest memory. Return 1 on success, 0 (nothing copied) when the range is not backed. */
int msrtrace_access_read_guest(const msrtrace_access* a, uint64_t gpa, void* dst, size_t len);
int msrtrace_access_write_guest(msrtrace_access* a, uint64_t gpa, const void* src, size_t len);

/* RDMSR of `index`: store the value in *value and return a verdict. */
typedef int (*msrtrace_read_fn)(void* ctx, msrtrace_access* a, uint32_t index, uint64_t* value);
/* WRMSR of `value` to `index`: return a verdict. */
typedef int (*msrtrace_write_fn)(void* ctx, msrtrace_access* a, uint32_t index, uint64_t value);

/* ---- Handler sets ------------------------------------------------------------------------ */

typedef struct msrtrace_handler_set msrtrace_handler_set;

/* Creates an empty set. `base` names a registered set ("reference") installed before the
 * callbacks, or is NULL for none. Errors: MSRTRACE_NOT_FOUND for an unknown base. */
msrtrace_handler_set* msrtrace_handler_set_create(const char* base, char* err, size_t err_len);
void msrtrace_handler_set_destroy(msrtrace_handler_set* set);

/* Reserves a per-vCPU (or VM-wide) 64-bit slot with a reset value and returns its number
 * (0, 1, ... in order of reservation per kind). `name` must be unique among the set's slots
 * and its base's; snapshots key slots by name. Errors: MSRTRACE_ALREADY_EXISTS. */
int msrtrace_handler_set_add_vcpu_slot(msrtrace_handler_set* set, const char* name, uint64_t reset,
                                       uint32_t* slot, char* err, size_t err_len);
int msrtrace_handler_set_add_vm_slot(msrtrace_handler_set* set, const char* name, uint64_t reset,
                                     uint32_t* slot, char* err, size_t err_len);

/* Registers `read`/`write` with `ctx` for the indices [first, last] (inclusive), reported as
 * `name` ("ACME_COUNTER"; NULL = unnamed). All or nothing: returns MSRTRACE_ALREADY_EXISTS and
 * adds nothing when any index is already taken in this set or by its base on the default CPU
 * profile (the original design's Controller::insert returning false). `read` or `write` may be
 * NULL: that access then injects #GP (a write-only or read-only MSR). */
int msrtrace_handler_set_add_msr(msrtrace_handler_set* set, uint32_t first, uint32_t last,
                                 const char* name, msrtrace_read_fn read, msrtrace_write_fn write,
                                 void* ctx, char* err, size_t err_len);

/* Registers a copy of `set` as the named handler set `name`, for traces, replay and fuzzing.
 * The set may be changed or destroyed afterwards; the registered copy is not. At most 64 sets
 * are registered through this API per process. Errors: MSRTRACE_ALREADY_EXISTS (name taken),
 * MSRTRACE_RESOURCE_EXHAUSTED. */
int msrtrace_handler_set_register(const msrtrace_handler_set* set, const char* name,
                                  const char* description, char* err, size_t err_len);

/* ---- Controller -------------------------------------------------------------------------- */

enum {
  MSRTRACE_POLICY_INJECT_GP = 1, /* KVM's default: unknown MSR -> #GP(0). */
  MSRTRACE_POLICY_IGNORE = 2,    /* ignore_msrs=1: reads return 0, writes dropped, RIP moves. */
  MSRTRACE_POLICY_FAIL = 3       /* The exit fails with MSRTRACE_NOT_FOUND; the VM stops. */
};

enum { MSRTRACE_VENDOR_INTEL_VMX = 1, MSRTRACE_VENDOR_AMD_SVM = 2 };

/* A VM exit. For MSR exits: VMX reason 31 (RDMSR) / 32 (WRMSR); SVM exit code 0x7c with
 * info1 0 (read) / 1 (write). */
typedef struct msrtrace_exit {
  uint32_t vendor; /* MSRTRACE_VENDOR_* */
  uint32_t reason;
  uint64_t info1;
  uint32_t instruction_length; /* As the CPU reported it (1..15). */
  uint64_t host_tsc;
  uint64_t host_wall_ns;
} msrtrace_exit;

/* Fills `exit` for an Intel RDMSR (is_write = 0) or WRMSR (1) of length 2. */
void msrtrace_exit_init(msrtrace_exit* exit, int is_write);

/* The registers an MSR exit reads and writes. gpr[] is in ModRM order: rax, rcx, rdx, rbx,
 * rsp, rbp, rsi, rdi, r8..r15. */
typedef struct msrtrace_regs {
  uint64_t gpr[16];
  uint64_t rip;
  uint64_t rflags;
  uint64_t cr0;
  uint64_t cr4;
  uint64_t efer;
  uint32_t cs_l;
  uint32_t interruptibility;
  /* The exception pending for the next VM entry (#GP(0) after a fault, #DB after a
   * single-stepped retire). */
  uint32_t pending_valid;
  uint32_t pending_vector;
  uint32_t pending_has_error_code;
  uint32_t pending_error_code;
  uint64_t pending_payload;
} msrtrace_regs;

enum {
  MSRTRACE_OUTCOME_RETIRED = 1,     /* Accepted; RIP advanced. */
  MSRTRACE_OUTCOME_GP_INJECTED = 2, /* #GP(0) pending; nothing else changed. */
  MSRTRACE_OUTCOME_IGNORED = 3      /* Unknown MSR under MSRTRACE_POLICY_IGNORE; RIP advanced. */
};

typedef struct msrtrace_outcome {
  uint32_t kind;     /* MSRTRACE_OUTCOME_* */
  uint32_t is_write; /* 0 RDMSR, 1 WRMSR. */
  uint32_t index;
  uint32_t unknown_msr; /* 1 when no handler implements the index. */
  uint64_t value;       /* RDMSR: the value read (0 on a fault). WRMSR: the value written. */
} msrtrace_outcome;

typedef struct msrtrace_controller msrtrace_controller;

/* Builds a machine: the set installed for CPU profile `profile` (NULL = the default profile),
 * unknown-MSR `policy` (MSRTRACE_POLICY_*), `vcpu_count` vCPUs (ids 0..n-1) at reset.
 * Errors: MSRTRACE_INVALID_ARGUMENT (unknown profile or policy, a set that fails to install,
 * e.g. a callback index its base takes on this profile). */
msrtrace_controller* msrtrace_controller_create(const msrtrace_handler_set* set,
                                                const char* profile, int policy,
                                                uint32_t vcpu_count, char* err, size_t err_len);
/* The same for a registered set, by name (the name recordings carry). Errors: also
 * MSRTRACE_NOT_FOUND. */
msrtrace_controller* msrtrace_controller_create_registered(const char* set_name,
                                                           const char* profile, int policy,
                                                           uint32_t vcpu_count, char* err,
                                                           size_t err_len);
void msrtrace_controller_destroy(msrtrace_controller* c);

/* Handles one exit of vCPU `vcpu_id` with `regs` as the vCPU's registers (in) and the result
 * (out): index = ECX; WRMSR value = EDX:EAX; a retired RDMSR sets RAX/RDX (upper halves zero);
 * a retired access advances RIP by the instruction length; a #GP leaves every register but the
 * pending exception unchanged. `regs->pending_valid` must be 0 on entry (the previous exit's
 * exception was delivered). `out` may be NULL.
 * Errors: MSRTRACE_NOT_HANDLED (not an MSR exit), MSRTRACE_NOT_FOUND (unknown MSR under the fail
 * policy), MSRTRACE_INTERNAL (a callback's VMM error), MSRTRACE_INVALID_ARGUMENT (no such vCPU);
 * `regs` is unchanged on any error. */
int msrtrace_controller_handle(msrtrace_controller* c, uint32_t vcpu_id, const msrtrace_exit* exit,
                               msrtrace_regs* regs, msrtrace_outcome* out, char* err,
                               size_t err_len);

/* Host-initiated access (KVM_GET_MSRS / KVM_SET_MSRS): no register effects. */
int msrtrace_controller_host_read(msrtrace_controller* c, uint32_t vcpu_id, uint32_t index,
                                  uint64_t* value, char* err, size_t err_len);
int msrtrace_controller_host_write(msrtrace_controller* c, uint32_t vcpu_id, uint32_t index,
                                   uint64_t value, char* err, size_t err_len);

/* The vCPU's registers as the controller holds them (reset values after create). */
int msrtrace_controller_get_regs(const msrtrace_controller* c, uint32_t vcpu_id,
                                 msrtrace_regs* regs);

/* A 64-bit digest of the whole machine state (MSR state, handler state, registers, memory). */
uint64_t msrtrace_controller_state_digest(const msrtrace_controller* c);

/* ---- Recording --------------------------------------------------------------------------- */

typedef struct msrtrace_recorder msrtrace_recorder;

/* Starts recording `c` to `path` (truncated; ".gz" compresses): writes the header and a snapshot
 * of the machine. `producer` names the program (NULL = "msrtrace C API"). REQUIRES: `c` was
 * created with msrtrace_controller_create_registered() (the trace names the set) and outlives
 * the recorder; while it records, its exits go through msrtrace_recorder_handle().
 * Errors: MSRTRACE_FAILED_PRECONDITION, MSRTRACE_INTERNAL (I/O). */
msrtrace_recorder* msrtrace_recorder_start(msrtrace_controller* c, const char* path,
                                           const char* producer, char* err, size_t err_len);
/* msrtrace_controller_handle() that also records the exit. A trace write error does not
 * disturb the VM: the exit's result is returned and the error is reported by _close(). */
int msrtrace_recorder_handle(msrtrace_recorder* r, uint32_t vcpu_id, const msrtrace_exit* exit,
                             msrtrace_regs* regs, msrtrace_outcome* out, char* err, size_t err_len);
/* Writes the trailer (with the final-state digest) and closes the file. Returns the first
 * recording error. Call once; then destroy. */
int msrtrace_recorder_close(msrtrace_recorder* r, char* err, size_t err_len);
/* Destroys the recorder; a recorder not closed is closed without a digest. */
void msrtrace_recorder_destroy(msrtrace_recorder* r);
uint64_t msrtrace_recorder_events(const msrtrace_recorder* r);

/* ---- Replay ------------------------------------------------------------------------------ */

typedef struct msrtrace_replay_result {
  uint64_t events;
  uint64_t reads;
  uint64_t writes;
  uint64_t faults;
  uint64_t ignored;
  uint64_t vmm_errors;
  uint64_t divergences; /* Every divergence counted; the first is described in `err`. */
  uint32_t complete;    /* 0 for a torn tail or a missing trailer (not an error). */
  uint64_t final_digest;
} msrtrace_replay_result;

/* Replays the trace at `path` with the replay driver's comparisons and architectural checks,
 * `repeat` times (>= 1; final digests must agree), and once more from a mid-trace snapshot when
 * `check_resume` is non-zero. `handler_set` NULL replays with the set the trace names. A
 * registered set name replays through that set instead; it must extend the trace's set (its
 * base installs the trace's handlers first, as in "reference" plus callbacks): its own handlers
 * start at reset, and the recorded final-state digest, taken over the other set, is not
 * compared. Returns MSRTRACE_OK when clean, MSRTRACE_DIVERGED with the first divergence in
 * `err`, or an error for an unusable trace (`result` is then zeroed). `result` may be NULL. */
int msrtrace_replay_file(const char* path, const char* handler_set, uint32_t repeat,
                         int check_resume, msrtrace_replay_result* result, char* err,
                         size_t err_len);

/* ---- Fuzzing ----------------------------------------------------------------------------- */

typedef struct msrtrace_fuzzer msrtrace_fuzzer;

/* The exit-sequence fuzzer over the registered set `handler_set`: the structure-aware mutator
 * aimed at the set's indices, and every oracle (RIP progress, register hygiene, upper-half
 * independence, fault atomicity, determinism, snapshot resume, read-after-write). Inputs are
 * trace files; an input recorded on the set's base (e.g. a golden trace on "reference") runs on
 * this set as msrtrace_replay_file() describes. This is the same check a fuzzer built by
 * msrtrace_add_fuzzer() runs in LLVMFuzzerTestOneInput. */
msrtrace_fuzzer* msrtrace_fuzzer_create(const char* handler_set, char* err, size_t err_len);
void msrtrace_fuzzer_destroy(msrtrace_fuzzer* f);
/* Runs one input. MSRTRACE_OK: no finding (inputs that do not decode are skipped);
 * MSRTRACE_FINDING: the failure report is written to `report` (may be NULL). */
int msrtrace_fuzzer_test_one_input(msrtrace_fuzzer* f, const uint8_t* data, size_t size,
                                   char* report, size_t report_len);
/* Mutates data[0..size) in place (capacity `max_size`) with the structure-aware mutator and
 * returns the new size; deterministic in (data, seed). */
size_t msrtrace_fuzzer_mutate(msrtrace_fuzzer* f, uint8_t* data, size_t size, size_t max_size,
                              uint64_t seed);

typedef struct msrtrace_fuzz_stats {
  uint64_t seeds; /* Seed files loaded. */
  uint64_t runs;  /* Inputs run (seeds included). */
} msrtrace_fuzz_stats;

/* A brief in-process campaign without coverage feedback: runs every seed (files, or directories
 * searched recursively for *.trace / *.trace.gz files, symlinks followed, each file once), then
 * `runs` mutants of them chosen by `seed`. Stops at the first finding (MSRTRACE_FINDING, report
 * in `report`). For coverage-guided fuzzing build a libFuzzer binary with msrtrace_add_fuzzer().
 * `stats` may be NULL. */
int msrtrace_fuzzer_run(msrtrace_fuzzer* f, const char* const* seed_paths, size_t seed_count,
                        uint64_t runs, uint64_t seed, msrtrace_fuzz_stats* stats, char* report,
                        size_t report_len);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* MSRTRACE_MSRTRACE_H_ */
