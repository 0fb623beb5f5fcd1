// The reference handler set's MSR table: one row per MSR (or per range), as data. The handlers
// are built from these rows, `msrtrace msrs` prints them, and the fuzz dictionary and mutator
// read their indices and masks, so code, docs and fuzzing never drift apart.
#ifndef MSRTRACE_HANDLERS_MSR_TABLE_H_
#define MSRTRACE_HANDLERS_MSR_TABLE_H_

#include <cstdint>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "handlers/cpu_profile.h"
#include "harness/core/controller.h"

namespace msrtrace {

// Checks a family applies to written values, beyond the reserved mask (bit set). Installing the
// reference set declares every row to the harness (DeclaredRowOf, harness/core/declared_rows.h);
// the fuzzer's table-conformance oracle and fuzz/row_property_test.cc then verify the handler
// against the row's reserved mask and its canonical, lock-bit, read-only, write-only and
// host-only-write checks, and its reset value (docs/fuzzing.md, "How a row declares a check").
enum MsrCheck : uint32_t {
  kCheckNone = 0,
  kCheckCanonical = 1u << 0,      // Non-canonical value -> #GP.
  kCheckCanonicalize = 1u << 1,   // Value sign-extended instead of #GP (SYSENTER_ESP/EIP).
  kCheckPatTypes = 1u << 2,       // Every byte a valid PAT type (0,1,4,5,6,7).
  kCheckMtrrTypes = 1u << 3,      // Every byte (or the type field) a valid MTRR type.
  kCheckMaxPhyAddr = 1u << 4,     // Bits >= MAXPHYADDR reserved.
  kCheckLockBit = 1u << 5,        // Writes #GP once the lock bit (bit 0) is set.
  kCheckHostOnlyWrite = 1u << 6,  // Guest writes #GP; host writes allowed.
  kCheckWritesIgnored = 1u << 7,  // Guest writes are dropped without #GP.
  kCheckWriteOnly = 1u << 8,      // Reads #GP.
  kCheckReadOnly = 1u << 9,       // Writes #GP (KVM_MSR_RET_UNSUPPORTED / 1).
  kCheckGuestMemory = 1u << 10,   // Writes guest memory (kvm-clock structures).
  kCheckX2ApicMode = 1u << 11,    // #GP unless the local APIC is in x2APIC mode.
  kCheckHostOnlyRead = 1u << 12,  // Guest reads #GP; host reads allowed (SMBASE).
  // Without `requires_feature` the MSR does not exist at all: no handler is installed, so guest
  // and host accesses are KVM_MSR_RET_UNSUPPORTED (KVM's is_valid_msr style gates).
  kCheckAbsentWithoutFeature = 1u << 13,
  // A missing `requires_feature` fails host accesses too (#GP), not only the guest's.
  kCheckFeatureGatesHost = 1u << 14,
  // reserved_mask bits are silently cleared instead of #GP (AMD PMU: "AMD ignores writes to
  // reserved bits", pmu.c kvm_pmu_set_msr).
  kCheckReservedIgnored = 1u << 15,
  // reserved_mask #GPs only in some CPU modes (see note): not checkable from the row alone (the
  // table-conformance oracle skips it). Masks that differ by vendor or profile are resolved per
  // profile instead (ResolveRow).
  kCheckReservedConditional = 1u << 16,
  // The value at reset depends on the CPU profile or on register state each exit supplies
  // (EFER is VcpuRegs::efer): `reset` alone cannot be checked (see note).
  kCheckResetVaries = 1u << 17,
  // Guest writes obey rules beyond the masks and the checks above (CPU mode, CPUID, another
  // MSR's state: see note): a value clear of reserved and read-only bits may still #GP, so the
  // acceptance property (fuzz/row_property_test.cc) does not apply to the row.
  kCheckValueRules = 1u << 18,
  // A guest write does not #GP for changing read_only_mask bits: they keep their value
  // (EFER.LMA: the written LMA is replaced by the current one).
  kCheckReadOnlyKept = 1u << 19,
};

enum class MsrScope : uint8_t {
  kVcpu = 0,  // Per-vCPU state.
  kVm = 1,    // One value for the VM (kvm wall clock).
  kNone = 2,  // No state (write-only commands, constants).
};

class TableHandler;
struct TableEntry;

// Per-row code for an MSR whose rule is more than the declared checks (the local APIC's
// registers, kvm-clock's guest-memory writes, the TSC offset). The table handler calls the hook
// instead of its generic read or write; a hook may call TableHandler::GenericRead/GenericWrite
// for the declared checks and reach its family's state through TableHandler::State.
using MsrReadHook = MsrResult (*)(TableHandler& table, const TableEntry& e, uint32_t index,
                                  ExitContext& ctx);
using MsrWriteHook = MsrResult (*)(TableHandler& table, const TableEntry& e, uint32_t index,
                                   uint64_t value, ExitContext& ctx);
// The value of `index` when vCPU `vcpu_id` resets, where it differs per index of a range or per
// vCPU (the present MCE banks' MCi_CTL, Hyper-V's VP_INDEX); TableHandler::OnVcpuReset stores it
// over the row's `reset`.
using MsrResetHook = uint64_t (*)(const TableHandler& table, const TableEntry& e, uint32_t index,
                                  uint32_t vcpu_id);

// MsrRow::state of a row that keeps no slot of its own (its value is computed, or lives
// elsewhere, e.g. EFER in VcpuRegs).
inline constexpr char kNoState[] = "";

struct MsrRow {
  uint32_t index = 0;
  uint32_t last = 0;            // Last index of a range; == index for a single MSR.
  const char* name = "";        // Architectural name ("IA32_PAT").
  const char* family = "";      // Handler family that implements it ("pat", "mtrr", "x2apic").
  uint64_t reset = 0;           // Reset value (KVM's, for the BSP where it matters).
  uint64_t reserved_mask = 0;   // Bits whose setting -> #GP on a guest write.
  uint64_t read_only_mask = 0;  // Bits a guest write must not change: changing one -> #GP, or
                                // with kCheckReadOnlyKept the written bits are dropped.
  // Bits of reserved_mask a write drops without #GP (DEBUGCTL's unsupported BTF/LBR on VMX);
  // the other reserved bits #GP. kCheckReservedIgnored drops them all.
  uint64_t dropped_mask = 0;
  uint32_t checks = kCheckNone;
  MsrScope scope = MsrScope::kVcpu;
  // The row exists only if the profile has this feature (Feature::kCount = always).
  Feature requires_feature = Feature::kCount;
  Vendor vendor_only = Vendor::kUnspecified;  // kUnspecified = both vendors.
  bool volatile_value = false;  // Reads depend on time (TSC, kvm-clock...): replay compares
                                // such values by policy, not bit for bit.
  const char* note = "";        // The KVM fact behind the row and its source.
  // Where the row's value lives: nullptr = one slot per index, named after the MSR (scope);
  // kNoState = none; otherwise the name of a state slot of the family (TableStateDef) that
  // this single-index row reads and writes (rows may share one, e.g. the two kvm-clock MSRs).
  const char* state = nullptr;
  MsrReadHook read_hook = nullptr;    // nullptr = the generic read.
  MsrWriteHook write_hook = nullptr;  // nullptr = the generic write.
  MsrResetHook reset_hook = nullptr;  // nullptr = every index resets to `reset`.
};

// The row as it applies to a profile: reset values and masks KVM derives from CPUID, MCG_CAP...
// (one function per family; nullptr = rows do not depend on the profile).
using MsrRowResolver = MsrRow (*)(const MsrRow& row, const CpuProfile& profile);

// A handler family: its rows and the function that installs its handlers into a controller.
struct MsrFamilyDef {
  const char* name;
  absl::Span<const MsrRow> (*rows)();
  MsrRowResolver resolve;  // Profile-dependent row data; nullptr = none.
  // Installs the family's handlers for `profile` (reserving slots in controller.layout()).
  absl::Status (*install)(Controller& controller, const CpuProfile& profile);
};

// Every family of the reference set, in install order.
absl::Span<const MsrFamilyDef> ReferenceFamilies();

// All rows of the reference set sorted by index. With a profile: only the rows that exist on it.
std::vector<MsrRow> MsrTable();
std::vector<MsrRow> MsrTable(const CpuProfile& profile);
bool RowExists(const MsrRow& row, const CpuProfile& profile);
// The [index, last] ranges of the volatile rows among `rows` (MsrRow::volatile_value: values
// that depend on time), in the rows' order. The one definition of "volatile MSR" that recording
// and import use.
std::vector<std::pair<uint32_t, uint32_t>> VolatileRanges(absl::Span<const MsrRow> rows);

// The checks `row` declares to the harness (harness/core/declared_rows.h) on `profile`.
DeclaredRow DeclaredRowOf(const MsrRow& row, const CpuProfile& profile);

// Adds to `d` the MSRs a write to `row` may change on the writing vCPU (DeclaredRow::related)
// where KVM couples them: TSC / TSC_ADJUST / TSC_DEADLINE, APIC_BASE / x2APIC, MTRR_DEF_TYPE /
// the MTRRs, the PMU's global control / event selects / counters (handlers/related_msrs.cc).
void AddRelatedMsrs(const MsrRow& row, DeclaredRow* d);

// Installs the whole reference set for `profile`, declaring its rows (Controller::DeclareRow).
absl::Status InstallReferenceHandlers(Controller& controller, const CpuProfile& profile);

}  // namespace msrtrace

#endif  // MSRTRACE_HANDLERS_MSR_TABLE_H_
