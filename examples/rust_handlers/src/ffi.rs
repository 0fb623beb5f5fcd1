//! Hand-written declarations of the parts of msrtrace's C API (include/msrtrace/msrtrace.h)
//! this crate uses. Types and values must match the header exactly; the header documents
//! ownership, errors and thread-safety.
#![allow(non_camel_case_types)]

use std::os::raw::{c_char, c_int, c_void};

pub const MSRTRACE_OK: c_int = 0;
pub const MSRTRACE_NOT_HANDLED: c_int = 6;

pub const MSRTRACE_VERDICT_OK: c_int = 0;
pub const MSRTRACE_VERDICT_GP: c_int = 1;
pub const MSRTRACE_VERDICT_UNSUPPORTED: c_int = 2;
pub const MSRTRACE_VERDICT_VMM_ERROR: c_int = 3;

pub const MSRTRACE_POLICY_INJECT_GP: c_int = 1;

pub const MSRTRACE_VENDOR_INTEL_VMX: u32 = 1;
pub const MSRTRACE_OUTCOME_RETIRED: u32 = 1;
pub const MSRTRACE_OUTCOME_GP_INJECTED: u32 = 2;
pub const MSRTRACE_OUTCOME_IGNORED: u32 = 3;

#[repr(C)]
pub struct msrtrace_access {
    _opaque: [u8; 0],
}
#[repr(C)]
pub struct msrtrace_handler_set {
    _opaque: [u8; 0],
}
#[repr(C)]
pub struct msrtrace_controller {
    _opaque: [u8; 0],
}
#[repr(C)]
pub struct msrtrace_fuzzer {
    _opaque: [u8; 0],
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct msrtrace_exit {
    pub vendor: u32,
    pub reason: u32,
    pub info1: u64,
    pub instruction_length: u32,
    pub host_tsc: u64,
    pub host_wall_ns: u64,
}

#[repr(C)]
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub struct msrtrace_regs {
    pub gpr: [u64; 16],
    pub rip: u64,
    pub rflags: u64,
    pub cr0: u64,
    pub cr4: u64,
    pub efer: u64,
    pub cs_l: u32,
    pub interruptibility: u32,
    pub pending_valid: u32,
    pub pending_vector: u32,
    pub pending_has_error_code: u32,
    pub pending_error_code: u32,
    pub pending_payload: u64,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct msrtrace_outcome {
    pub kind: u32,
    pub is_write: u32,
    pub index: u32,
    pub unknown_msr: u32,
    pub value: u64,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct msrtrace_replay_result {
    pub events: u64,
    pub reads: u64,
    pub writes: u64,
    pub faults: u64,
    pub ignored: u64,
    pub vmm_errors: u64,
    pub divergences: u64,
    pub complete: u32,
    pub final_digest: u64,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct msrtrace_fuzz_stats {
    pub seeds: u64,
    pub runs: u64,
}

pub type msrtrace_read_fn =
    extern "C" fn(ctx: *mut c_void, a: *mut msrtrace_access, index: u32, value: *mut u64) -> c_int;
pub type msrtrace_write_fn =
    extern "C" fn(ctx: *mut c_void, a: *mut msrtrace_access, index: u32, value: u64) -> c_int;

extern "C" {
    pub fn msrtrace_status_name(status: c_int) -> *const c_char;

    pub fn msrtrace_access_vcpu_id(a: *const msrtrace_access) -> u32;
    pub fn msrtrace_access_get_slot(a: *const msrtrace_access, slot: u32) -> u64;
    pub fn msrtrace_access_set_slot(a: *mut msrtrace_access, slot: u32, value: u64);
    pub fn msrtrace_access_get_vm_slot(a: *const msrtrace_access, slot: u32) -> u64;
    pub fn msrtrace_access_set_vm_slot(a: *mut msrtrace_access, slot: u32, value: u64);

    pub fn msrtrace_handler_set_create(
        base: *const c_char,
        err: *mut c_char,
        err_len: usize,
    ) -> *mut msrtrace_handler_set;
    pub fn msrtrace_handler_set_destroy(set: *mut msrtrace_handler_set);
    pub fn msrtrace_handler_set_add_vcpu_slot(
        set: *mut msrtrace_handler_set,
        name: *const c_char,
        reset: u64,
        slot: *mut u32,
        err: *mut c_char,
        err_len: usize,
    ) -> c_int;
    pub fn msrtrace_handler_set_add_vm_slot(
        set: *mut msrtrace_handler_set,
        name: *const c_char,
        reset: u64,
        slot: *mut u32,
        err: *mut c_char,
        err_len: usize,
    ) -> c_int;
    pub fn msrtrace_handler_set_add_msr(
        set: *mut msrtrace_handler_set,
        first: u32,
        last: u32,
        name: *const c_char,
        read: Option<msrtrace_read_fn>,
        write: Option<msrtrace_write_fn>,
        ctx: *mut c_void,
        err: *mut c_char,
        err_len: usize,
    ) -> c_int;
    pub fn msrtrace_handler_set_register(
        set: *const msrtrace_handler_set,
        name: *const c_char,
        description: *const c_char,
        err: *mut c_char,
        err_len: usize,
    ) -> c_int;

    pub fn msrtrace_controller_create(
        set: *const msrtrace_handler_set,
        profile: *const c_char,
        policy: c_int,
        vcpu_count: u32,
        err: *mut c_char,
        err_len: usize,
    ) -> *mut msrtrace_controller;
    pub fn msrtrace_controller_destroy(c: *mut msrtrace_controller);
    pub fn msrtrace_controller_handle(
        c: *mut msrtrace_controller,
        vcpu_id: u32,
        exit: *const msrtrace_exit,
        regs: *mut msrtrace_regs,
        out: *mut msrtrace_outcome,
        err: *mut c_char,
        err_len: usize,
    ) -> c_int;
    pub fn msrtrace_controller_get_regs(
        c: *const msrtrace_controller,
        vcpu_id: u32,
        regs: *mut msrtrace_regs,
    ) -> c_int;

    pub fn msrtrace_replay_file(
        path: *const c_char,
        handler_set: *const c_char,
        repeat: u32,
        check_resume: c_int,
        result: *mut msrtrace_replay_result,
        err: *mut c_char,
        err_len: usize,
    ) -> c_int;

    pub fn msrtrace_fuzzer_create(
        handler_set: *const c_char,
        err: *mut c_char,
        err_len: usize,
    ) -> *mut msrtrace_fuzzer;
    pub fn msrtrace_fuzzer_destroy(f: *mut msrtrace_fuzzer);
    pub fn msrtrace_fuzzer_run(
        f: *mut msrtrace_fuzzer,
        seed_paths: *const *const c_char,
        seed_count: usize,
        runs: u64,
        seed: u64,
        stats: *mut msrtrace_fuzz_stats,
        report: *mut c_char,
        report_len: usize,
    ) -> c_int;
}
