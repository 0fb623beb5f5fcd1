//! The example: a Rust device on top of msrtrace's reference handlers, checked through the
//! `insert`/`handle` contract, then replayed against the golden corpus and fuzzed.
//!
//!   0x4f000200 RUST_ACCUMULATOR  per vCPU: WRMSR v adds v (v < 256, else #GP); RDMSR returns
//!                                the sum.
//!   0x4f000201 RUST_ID           read-only: 0x5255_5354 ("RUST"); WRMSR #GPs.
use crate::{Controller, ExitReason, Msr, MsrFault, Probe, Slot, VmError, VmexitResult};

pub const ACCUMULATOR: u32 = 0x4f00_0200;
pub const ID: u32 = 0x4f00_0201;
pub const SET_NAME: &str = "rust-device";

struct Accumulator {
    sum: Slot,
}

impl Msr for Accumulator {
    fn rdmsr(&self, _index: u32, p: &mut Probe) -> Result<u64, MsrFault> {
        Ok(p.slot(self.sum))
    }
    fn wrmsr(&self, _index: u32, value: u64, p: &mut Probe) -> Result<(), MsrFault> {
        if value >= 256 {
            return Err(MsrFault::Gp); // Checked before anything changes.
        }
        let sum = p.slot(self.sum).wrapping_add(value);
        p.set_slot(self.sum, sum);
        Ok(())
    }
}

struct Id;

impl Msr for Id {
    fn rdmsr(&self, _index: u32, _p: &mut Probe) -> Result<u64, MsrFault> {
        Ok(0x5255_5354)
    }
    fn wrmsr(&self, _index: u32, _value: u64, _p: &mut Probe) -> Result<(), MsrFault> {
        Err(MsrFault::Gp)
    }
}

fn check(cond: bool, what: &str) -> Result<(), String> {
    if cond {
        Ok(())
    } else {
        Err(format!("check failed: {}", what))
    }
}

fn err(e: VmError) -> String {
    format!("{:?}", e)
}

/// Builds the device's controller on the reference set.
fn build() -> Result<Controller, String> {
    let mut c = Controller::new(Some("reference")).map_err(err)?;
    let sum = c.vcpu_slot("RUST_ACCUMULATOR", 0).map_err(err)?;
    check(
        c.insert(ACCUMULATOR, Accumulator { sum }),
        "insert RUST_ACCUMULATOR",
    )?;
    check(c.insert(ID, Id), "insert RUST_ID")?;
    Ok(c)
}

/// The insert/handle contract of the original design.
fn check_controller() -> Result<(), String> {
    let mut c = build()?;
    check(
        !c.insert(ID, Id),
        "insert returns false for an index inserted before",
    )?;
    check(
        !c.insert(0x277, Id),
        "insert returns false for an index of the base set (IA32_PAT)",
    )?;

    let mut s = c.reset_state().map_err(err)?;
    s.rip = 0x1000;
    s.gpr[1] = u64::from(ACCUMULATOR); // ECX
    s.gpr[0] = 40; // EAX
    s.gpr[2] = 0; // EDX
    check(
        c.handle(ExitReason::Wrmsr, &mut s) == Ok(VmexitResult::Retired),
        "WRMSR 40 retires",
    )?;
    check(s.rip == 0x1002, "RIP forwarded past WRMSR")?;
    s.gpr[0] = 2;
    c.handle(ExitReason::Wrmsr, &mut s).map_err(err)?;
    s.gpr[0] = 0xffff_ffff_0000_0000; // Upper halves RDMSR must clear.
    s.gpr[2] = 0xffff_ffff_0000_0000;
    check(
        c.handle(ExitReason::Rdmsr, &mut s) == Ok(VmexitResult::Retired),
        "RDMSR retires",
    )?;
    check(
        s.gpr[0] == 42 && s.gpr[2] == 0,
        "RDMSR returns the sum in EDX:EAX",
    )?;
    check(s.rip == 0x1006, "RIP forwarded past RDMSR")?;

    s.gpr[0] = 256;
    check(
        c.handle(ExitReason::Wrmsr, &mut s) == Ok(VmexitResult::GpInjected),
        "WRMSR 256 #GPs",
    )?;
    check(
        s.rip == 0x1006 && s.pending_valid == 1 && s.pending_vector == 13,
        "#GP(0) pending",
    )?;
    check(
        c.handle(ExitReason::Rdmsr, &mut s).is_ok() && s.gpr[0] == 42,
        "a #GP changed nothing",
    )?;

    s.gpr[1] = u64::from(ID);
    c.handle(ExitReason::Rdmsr, &mut s).map_err(err)?;
    check(s.gpr[0] == 0x5255_5354, "RUST_ID reads 'RUST'")?;
    s.gpr[1] = 0x277; // IA32_PAT: passes through to the reference set.
    c.handle(ExitReason::Rdmsr, &mut s).map_err(err)?;
    check(
        s.gpr[0] == 0x0007_0406 && s.gpr[2] == 0x0007_0406,
        "IA32_PAT reset value",
    )?;
    check(
        c.handle(ExitReason::Other(10), &mut s)
            == Err(VmError::HandleVmexitFailed(ExitReason::Other(10))),
        "a CPUID exit is not handled",
    )?;
    check(
        !c.insert(0x4f00_0202, Id),
        "insert returns false once exits are handled",
    )?;
    println!("controller: insert/handle contract holds");
    Ok(())
}

pub fn run(args: &[String]) -> Result<(), String> {
    if args.len() < 2 {
        return Err("usage: rust_handlers GOLDEN_DIR [RUNS]".to_string());
    }
    let golden = &args[1];
    let runs: u64 = args.get(2).and_then(|r| r.parse().ok()).unwrap_or(300);
    check_controller()?;

    let mut c = build()?;
    c.register(
        SET_NAME,
        "Example: the reference set plus a Rust accumulator device",
    )
    .map_err(err)?;

    let mut traces: Vec<String> = std::fs::read_dir(golden)
        .map_err(|e| format!("{}: {}", golden, e))?
        .filter_map(|e| e.ok())
        .map(|e| e.path().to_string_lossy().into_owned())
        .filter(|p| p.ends_with(".trace") || p.ends_with(".trace.gz"))
        .collect();
    traces.sort();
    check(!traces.is_empty(), "the golden directory has traces")?;
    for t in &traces {
        let events = crate::replay(t, SET_NAME).map_err(err)?;
        println!("replay {} on {}: clean, {} events", t, SET_NAME, events);
    }
    let inputs = crate::fuzz(SET_NAME, &[golden.as_str()], runs).map_err(err)?;
    println!("fuzz {}: {} inputs, no finding", SET_NAME, inputs);
    Ok(())
}
