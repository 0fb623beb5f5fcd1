//! The original Rust design of msrtrace's controller (`Controller::insert` / `handle` over an
//! `Msr` trait) implemented over msrtrace's C API, so Rust VMMs plug their MSR handlers into
//! msrtrace's controller, replay driver and fuzzer.
//!
//! * `Controller::insert(index, msr)` registers a handler; it returns false when the index is
//!   taken (by an earlier insert or by the base handler set, e.g. msrtrace's reference set).
//! * `Controller::handle(reason, state)` runs the handler of ECX's index and reflects the result
//!   into the vCPU state: EDX:EAX on RDMSR, RIP forwarded past the instruction, or #GP(0)
//!   pending with RIP unchanged. Exits that are not RDMSR/WRMSR fail with
//!   `VmError::HandleVmexitFailed`, so a chain of controllers can try the next one.
//!
//! Unlike the original trait, handler state lives in msrtrace slots (`Probe::slot`), not in
//! `&mut self`: snapshots, replay and the determinism and snapshot-resume oracles see all state.
//! `Controller::register` names the handler set so traces, replay and the fuzzer can rebuild it.
mod ffi;

use std::ffi::{CStr, CString};
use std::os::raw::{c_char, c_int, c_void};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;

/// A VM exit reason as the controller sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitReason {
    Rdmsr,
    Wrmsr,
    /// Any other basic exit reason (VMX numbering).
    Other(u32),
}

/// A VMM-level failure (the VM stops).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VmError {
    /// Not an MSR exit: this controller does not handle it.
    HandleVmexitFailed(ExitReason),
    /// msrtrace reported an error: its status name and message.
    Msrtrace { status: String, message: String },
}

/// What the guest sees of a handled exit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VmexitResult {
    /// Accepted; RIP forwarded.
    Retired,
    /// #GP(0) pending; nothing else changed.
    GpInjected,
    /// Unknown MSR under the ignore policy; RIP forwarded.
    Ignored,
}

/// A handler's refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MsrFault {
    /// Inject #GP(0).
    Gp,
    /// Not implemented here: the unknown-MSR policy applies.
    Unsupported,
    /// A VMM failure: the exit fails and the VM stops.
    Vmm,
}

/// The vCPU registers an MSR exit reads and writes (msrtrace_regs).
pub type GenericVCpuState = ffi::msrtrace_regs;

/// A per-vCPU state slot reserved with `Controller::vcpu_slot`.
#[derive(Debug, Clone, Copy)]
pub struct Slot(u32);
/// A VM-wide state slot reserved with `Controller::vm_slot`.
#[derive(Debug, Clone, Copy)]
pub struct VmSlot(u32);

/// What a handler may see and change during one access (msrtrace_access).
pub struct Probe {
    access: *mut ffi::msrtrace_access,
}

impl Probe {
    pub fn vcpu_id(&self) -> u32 {
        unsafe { ffi::msrtrace_access_vcpu_id(self.access) }
    }
    pub fn slot(&self, s: Slot) -> u64 {
        unsafe { ffi::msrtrace_access_get_slot(self.access, s.0) }
    }
    pub fn set_slot(&mut self, s: Slot, value: u64) {
        unsafe { ffi::msrtrace_access_set_slot(self.access, s.0, value) }
    }
    pub fn vm_slot(&self, s: VmSlot) -> u64 {
        unsafe { ffi::msrtrace_access_get_vm_slot(self.access, s.0) }
    }
    pub fn set_vm_slot(&mut self, s: VmSlot, value: u64) {
        unsafe { ffi::msrtrace_access_set_vm_slot(self.access, s.0, value) }
    }
}

/// A handler for one or more MSR indices. A refusal (`Err`) must not have changed anything.
pub trait Msr: Send + Sync {
    fn rdmsr(&self, index: u32, p: &mut Probe) -> Result<u64, MsrFault>;
    fn wrmsr(&self, index: u32, value: u64, p: &mut Probe) -> Result<(), MsrFault>;
}

fn verdict(fault: MsrFault) -> c_int {
    match fault {
        MsrFault::Gp => ffi::MSRTRACE_VERDICT_GP,
        MsrFault::Unsupported => ffi::MSRTRACE_VERDICT_UNSUPPORTED,
        MsrFault::Vmm => ffi::MSRTRACE_VERDICT_VMM_ERROR,
    }
}

// The C callbacks: `ctx` is a `*mut Box<dyn Msr>` owned by the Controller. A panic must not
// unwind into C: it becomes a VMM error.
extern "C" fn read_trampoline(
    ctx: *mut c_void,
    a: *mut ffi::msrtrace_access,
    index: u32,
    value: *mut u64,
) -> c_int {
    let msr = unsafe { &*(ctx as *const Box<dyn Msr>) };
    let mut p = Probe { access: a };
    match catch_unwind(AssertUnwindSafe(|| msr.rdmsr(index, &mut p))) {
        Ok(Ok(v)) => {
            unsafe { *value = v };
            ffi::MSRTRACE_VERDICT_OK
        }
        Ok(Err(f)) => verdict(f),
        Err(_) => ffi::MSRTRACE_VERDICT_VMM_ERROR,
    }
}

extern "C" fn write_trampoline(
    ctx: *mut c_void,
    a: *mut ffi::msrtrace_access,
    index: u32,
    value: u64,
) -> c_int {
    let msr = unsafe { &*(ctx as *const Box<dyn Msr>) };
    let mut p = Probe { access: a };
    match catch_unwind(AssertUnwindSafe(|| msr.wrmsr(index, value, &mut p))) {
        Ok(Ok(())) => ffi::MSRTRACE_VERDICT_OK,
        Ok(Err(f)) => verdict(f),
        Err(_) => ffi::MSRTRACE_VERDICT_VMM_ERROR,
    }
}

/// An error buffer for one C call.
struct ErrBuf([u8; 512]);

impl ErrBuf {
    fn new() -> Self {
        ErrBuf([0; 512])
    }
    fn ptr(&mut self) -> *mut c_char {
        self.0.as_mut_ptr() as *mut c_char
    }
    fn len(&self) -> usize {
        self.0.len()
    }
    fn error(&self, status: c_int) -> VmError {
        let end = self.0.iter().position(|&b| b == 0).unwrap_or(self.0.len());
        let name = unsafe { CStr::from_ptr(ffi::msrtrace_status_name(status)) };
        VmError::Msrtrace {
            status: name.to_string_lossy().into_owned(),
            message: String::from_utf8_lossy(&self.0[..end]).into_owned(),
        }
    }
}

fn cstring(s: &str) -> CString {
    CString::new(s).expect("no NUL in names")
}

/// The MSR exit controller.
pub struct Controller {
    set: *mut ffi::msrtrace_handler_set,
    machine: *mut ffi::msrtrace_controller,
    handlers: Vec<*mut Box<dyn Msr>>,
    // Registered sets live for the whole process (msrtrace never removes them), and so must the
    // handlers their callbacks point to.
    registered: bool,
}

impl Controller {
    /// A controller whose handlers extend the registered set `base` ("reference": Linux KVM's
    /// MSR emulation), or none.
    pub fn new(base: Option<&str>) -> Result<Self, VmError> {
        let base_c = base.map(cstring);
        let mut err = ErrBuf::new();
        let set = unsafe {
            ffi::msrtrace_handler_set_create(
                base_c.as_ref().map_or(ptr::null(), |s| s.as_ptr()),
                err.ptr(),
                err.len(),
            )
        };
        if set.is_null() {
            return Err(err.error(2));
        }
        Ok(Controller {
            set,
            machine: ptr::null_mut(),
            handlers: Vec::new(),
            registered: false,
        })
    }

    /// Reserves a per-vCPU state slot (set-up only).
    pub fn vcpu_slot(&mut self, name: &str, reset: u64) -> Result<Slot, VmError> {
        let mut err = ErrBuf::new();
        let mut slot = 0u32;
        let name = cstring(name);
        let rc = unsafe {
            ffi::msrtrace_handler_set_add_vcpu_slot(
                self.set,
                name.as_ptr(),
                reset,
                &mut slot,
                err.ptr(),
                err.len(),
            )
        };
        if rc != ffi::MSRTRACE_OK {
            return Err(err.error(rc));
        }
        Ok(Slot(slot))
    }

    /// Reserves a VM-wide state slot (set-up only).
    pub fn vm_slot(&mut self, name: &str, reset: u64) -> Result<VmSlot, VmError> {
        let mut err = ErrBuf::new();
        let mut slot = 0u32;
        let name = cstring(name);
        let rc = unsafe {
            ffi::msrtrace_handler_set_add_vm_slot(
                self.set,
                name.as_ptr(),
                reset,
                &mut slot,
                err.ptr(),
                err.len(),
            )
        };
        if rc != ffi::MSRTRACE_OK {
            return Err(err.error(rc));
        }
        Ok(VmSlot(slot))
    }

    /// Inserts an MSR handler at `index`. Returns false if the index is taken (by an earlier
    /// insert or the base set), or once the controller has handled its first exit; true
    /// otherwise.
    pub fn insert(&mut self, index: u32, msr: impl Msr + 'static) -> bool {
        if !self.machine.is_null() {
            return false;
        }
        let ctx: *mut Box<dyn Msr> = Box::into_raw(Box::new(Box::new(msr) as Box<dyn Msr>));
        let rc = unsafe {
            ffi::msrtrace_handler_set_add_msr(
                self.set,
                index,
                index,
                ptr::null(),
                Some(read_trampoline),
                Some(write_trampoline),
                ctx as *mut c_void,
                ptr::null_mut(),
                0,
            )
        };
        if rc != ffi::MSRTRACE_OK {
            drop(unsafe { Box::from_raw(ctx) });
            return false;
        }
        self.handlers.push(ctx);
        true
    }

    /// Registers the handlers inserted so far as the named handler set `name`: traces recorded
    /// with it name it, and msrtrace's replay and fuzzer rebuild it by name.
    pub fn register(&mut self, name: &str, description: &str) -> Result<(), VmError> {
        let mut err = ErrBuf::new();
        let (name, description) = (cstring(name), cstring(description));
        let rc = unsafe {
            ffi::msrtrace_handler_set_register(
                self.set,
                name.as_ptr(),
                description.as_ptr(),
                err.ptr(),
                err.len(),
            )
        };
        if rc != ffi::MSRTRACE_OK {
            return Err(err.error(rc));
        }
        self.registered = true;
        Ok(())
    }

    /// The vCPU registers at reset (vCPU 0).
    pub fn reset_state(&mut self) -> Result<GenericVCpuState, VmError> {
        self.machine()?;
        let mut regs = GenericVCpuState::default();
        unsafe { ffi::msrtrace_controller_get_regs(self.machine, 0, &mut regs) };
        Ok(regs)
    }

    fn machine(&mut self) -> Result<*mut ffi::msrtrace_controller, VmError> {
        if self.machine.is_null() {
            let mut err = ErrBuf::new();
            let m = unsafe {
                ffi::msrtrace_controller_create(
                    self.set,
                    ptr::null(),
                    ffi::MSRTRACE_POLICY_INJECT_GP,
                    1,
                    err.ptr(),
                    err.len(),
                )
            };
            if m.is_null() {
                return Err(err.error(1));
            }
            self.machine = m;
        }
        Ok(self.machine)
    }

    /// Handles an exit of vCPU 0 (instruction length 2): finds the handler of ECX's index, runs
    /// it and reflects the result into `state`, forwarding RIP past the instruction.
    pub fn handle(
        &mut self,
        reason: ExitReason,
        state: &mut GenericVCpuState,
    ) -> Result<VmexitResult, VmError> {
        let basic = match reason {
            ExitReason::Rdmsr => 31,
            ExitReason::Wrmsr => 32,
            ExitReason::Other(_) => return Err(VmError::HandleVmexitFailed(reason)),
        };
        let machine = self.machine()?;
        let exit = ffi::msrtrace_exit {
            vendor: ffi::MSRTRACE_VENDOR_INTEL_VMX,
            reason: basic,
            instruction_length: 2,
            ..Default::default()
        };
        let mut out = ffi::msrtrace_outcome::default();
        let mut err = ErrBuf::new();
        state.pending_valid = 0; // The previous exit's exception was delivered.
        let rc = unsafe {
            ffi::msrtrace_controller_handle(
                machine,
                0,
                &exit,
                state,
                &mut out,
                err.ptr(),
                err.len(),
            )
        };
        if rc == ffi::MSRTRACE_NOT_HANDLED {
            return Err(VmError::HandleVmexitFailed(reason));
        }
        if rc != ffi::MSRTRACE_OK {
            return Err(err.error(rc));
        }
        match out.kind {
            ffi::MSRTRACE_OUTCOME_RETIRED => Ok(VmexitResult::Retired),
            ffi::MSRTRACE_OUTCOME_GP_INJECTED => Ok(VmexitResult::GpInjected),
            ffi::MSRTRACE_OUTCOME_IGNORED => Ok(VmexitResult::Ignored),
            kind => Err(VmError::Msrtrace {
                status: "internal".to_string(),
                message: format!("unknown outcome kind {}", kind),
            }),
        }
    }
}

impl Drop for Controller {
    fn drop(&mut self) {
        unsafe {
            if !self.machine.is_null() {
                ffi::msrtrace_controller_destroy(self.machine);
            }
            ffi::msrtrace_handler_set_destroy(self.set);
        }
        if !self.registered {
            for h in self.handlers.drain(..) {
                drop(unsafe { Box::from_raw(h) });
            }
        }
    }
}

/// Replays the trace at `path` through the registered set `set` (twice, and from a mid-trace
/// snapshot). Ok(events) when clean.
pub fn replay(path: &str, set: &str) -> Result<u64, VmError> {
    let (path, set) = (cstring(path), cstring(set));
    let mut result = ffi::msrtrace_replay_result::default();
    let mut err = ErrBuf::new();
    let rc = unsafe {
        ffi::msrtrace_replay_file(
            path.as_ptr(),
            set.as_ptr(),
            2,
            1,
            &mut result,
            err.ptr(),
            err.len(),
        )
    };
    if rc != ffi::MSRTRACE_OK {
        return Err(err.error(rc));
    }
    Ok(result.events)
}

/// Fuzzes the registered set `set` in process: the seeds, then `runs` mutants, every oracle
/// active. Ok(inputs run) when nothing was found.
pub fn fuzz(set: &str, seed_dirs: &[&str], runs: u64) -> Result<u64, VmError> {
    let set = cstring(set);
    let mut err = ErrBuf::new();
    let f = unsafe { ffi::msrtrace_fuzzer_create(set.as_ptr(), err.ptr(), err.len()) };
    if f.is_null() {
        return Err(err.error(2));
    }
    let dirs: Vec<CString> = seed_dirs.iter().map(|d| cstring(d)).collect();
    let ptrs: Vec<*const c_char> = dirs.iter().map(|d| d.as_ptr()).collect();
    let mut stats = ffi::msrtrace_fuzz_stats::default();
    let mut report = vec![0u8; 16384];
    let rc = unsafe {
        ffi::msrtrace_fuzzer_run(
            f,
            ptrs.as_ptr(),
            ptrs.len(),
            runs,
            1,
            &mut stats,
            report.as_mut_ptr() as *mut c_char,
            report.len(),
        )
    };
    unsafe { ffi::msrtrace_fuzzer_destroy(f) };
    if rc != ffi::MSRTRACE_OK {
        let end = report.iter().position(|&b| b == 0).unwrap_or(report.len());
        return Err(VmError::Msrtrace {
            status: unsafe { CStr::from_ptr(ffi::msrtrace_status_name(rc)) }
                .to_string_lossy()
                .into_owned(),
            message: String::from_utf8_lossy(&report[..end]).into_owned(),
        });
    }
    Ok(stats.runs)
}

pub mod demo;

/// Entry point for the C main() of the example binary: `rust_handlers GOLDEN_DIR [RUNS]`.
#[no_mangle]
pub extern "C" fn rust_handlers_main(argc: c_int, argv: *const *const c_char) -> c_int {
    let args: Vec<String> = (0..argc.max(0) as usize)
        .map(|i| {
            unsafe { CStr::from_ptr(*argv.add(i)) }
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    match catch_unwind(|| demo::run(&args)) {
        Ok(Ok(())) => 0,
        Ok(Err(message)) => {
            eprintln!("rust_handlers: {}", message);
            1
        }
        Err(_) => 1,
    }
}
