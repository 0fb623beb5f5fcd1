#include "handlers/mtrr.h"

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "handlers/families.h"
#include "handlers/table_handler.h"

namespace msrtrace {
namespace {

constexpr char kFamily[] = "mtrr_pat";

// Variable MTRRs: base = type in 7:0, bits 11:8 reserved; mask = bits 10:0 reserved, 11 = V.
// Bits >= MAXPHYADDR are added per profile (kCheckMaxPhyAddr, ResolveRow).
constexpr uint64_t kPhysBaseReserved = 0xf00;
constexpr uint64_t kPhysMaskReserved = 0x7ff;

constexpr char kVarNote[] =
    "Type (7:0) must be 0,1,4,5,6; bits 11:8 and >= MAXPHYADDR reserved (#GP, host too). "
    "mtrr.c kvm_mtrr_valid";
constexpr char kVarMaskNote[] =
    "Bits 10:0 and >= MAXPHYADDR reserved; bit 11 = valid (#GP, host too). mtrr.c "
    "kvm_mtrr_valid";
constexpr char kFixedNote[] =
    "Every byte must be a valid MTRR type 0,1,4,5,6 (#GP, host too). mtrr.c kvm_mtrr_valid";
constexpr char kHoleNote[] =
    "Routed to kvm_mtrr_get/set_msr but unknown to find_mtrr(): reads and writes return 1 "
    "(#GP, even with ignore_msrs; host accesses refused). mtrr.c; msrs.c";

// find_mtrr() == NULL: kvm_mtrr_get/set_msr return 1 (#GP, host too).
MsrResult HoleRead(TableHandler&, const TableEntry&, uint32_t, ExitContext&) {
  return MsrResult::Gp();
}
MsrResult HoleWrite(TableHandler&, const TableEntry&, uint32_t, uint64_t, ExitContext&) {
  return MsrResult::Gp();
}

// An index KVM routes to the MTRR code that find_mtrr() does not know.
MsrRowBuilder Hole(uint32_t first, uint32_t last, const char* name) {
  return MsrRowBuilder(first, name, kFamily)
      .Last(last)
      .Reserved(~0ull)
      .Scope(MsrScope::kNone)
      .OnRead(&HoleRead)
      .OnWrite(&HoleWrite)
      .Note(kHoleNote);
}

const std::vector<MsrRow>& Rows() {
  static const auto* rows = [] {
    auto* v = new std::vector<MsrRow>;
    v->push_back(MsrRowBuilder(kMsrMtrrCap, "IA32_MTRRCAP", kFamily)
                     .Reset(kMtrrCapValue)
                     .Checks(kCheckReadOnly)
                     .Scope(MsrScope::kNone)
                     .Note("0x508 = WC | FIX | KVM_NR_VAR_MTRR (8), SMRR = 0. Read-only: writes "
                           "are KVM_MSR_RET_UNSUPPORTED. mtrr.c kvm_mtrr_get_msr"));
    static const char* const kVarNames[16] = {
        "IA32_MTRR_PHYSBASE0", "IA32_MTRR_PHYSMASK0", "IA32_MTRR_PHYSBASE1", "IA32_MTRR_PHYSMASK1",
        "IA32_MTRR_PHYSBASE2", "IA32_MTRR_PHYSMASK2", "IA32_MTRR_PHYSBASE3", "IA32_MTRR_PHYSMASK3",
        "IA32_MTRR_PHYSBASE4", "IA32_MTRR_PHYSMASK4", "IA32_MTRR_PHYSBASE5", "IA32_MTRR_PHYSMASK5",
        "IA32_MTRR_PHYSBASE6", "IA32_MTRR_PHYSMASK6", "IA32_MTRR_PHYSBASE7", "IA32_MTRR_PHYSMASK7"};
    for (uint32_t i = 0; i < 16; ++i) {
      const bool base = (i & 1) == 0;
      v->push_back(MsrRowBuilder(kMsrMtrrPhysBase0 + i, kVarNames[i], kFamily)
                       .Reserved(base ? kPhysBaseReserved : kPhysMaskReserved)
                       .Checks(kCheckMaxPhyAddr | (base ? kCheckMtrrTypes : 0u))
                       .Note(base ? kVarNote : kVarMaskNote));
    }
    v->push_back(Hole(0x210, 0x24f, "MTRR_UNIMPLEMENTED_VAR"));
    v->push_back(MsrRowBuilder(kMsrMtrrFix64k00000, "IA32_MTRR_FIX64K_00000", kFamily)
                     .Checks(kCheckMtrrTypes)
                     .Note(kFixedNote));
    v->push_back(Hole(0x251, 0x257, "MTRR_UNIMPLEMENTED"));
    v->push_back(MsrRowBuilder(kMsrMtrrFix16k80000, "IA32_MTRR_FIX16K_80000", kFamily)
                     .Checks(kCheckMtrrTypes)
                     .Note(kFixedNote));
    v->push_back(MsrRowBuilder(kMsrMtrrFix16kA0000, "IA32_MTRR_FIX16K_A0000", kFamily)
                     .Checks(kCheckMtrrTypes)
                     .Note(kFixedNote));
    v->push_back(Hole(0x25a, 0x267, "MTRR_UNIMPLEMENTED"));
    v->push_back(MsrRowBuilder(kMsrMtrrFix4kC0000, "IA32_MTRR_FIX4K", kFamily)
                     .Last(kMsrMtrrFix4kF8000)
                     .Checks(kCheckMtrrTypes)
                     .Note("IA32_MTRR_FIX4K_C0000 .. _F8000. Every byte must be a valid MTRR type "
                           "0,1,4,5,6 (#GP, host too). mtrr.c kvm_mtrr_valid"));
    v->push_back(Hole(0x270, 0x276, "MTRR_UNIMPLEMENTED"));
    v->push_back(MsrRowBuilder(kMsrPat, "IA32_PAT", kFamily)
                     .Reset(kPatReset)
                     .Reserved(0xf8f8f8f8f8f8f8f8ull)
                     .Checks(kCheckPatTypes)
                     .Note("Reset 0x0007040600070406. Every byte 0,1,4,5,6,7: bits 7:3 of a byte "
                           "or type 2/3 -> #GP (host too). x86.h kvm_pat_valid; msrs.c"));
    v->push_back(Hole(0x278, 0x27f, "MTRR_UNIMPLEMENTED"));
    v->push_back(Hole(0x2a0, 0x2fe, "MTRR_UNIMPLEMENTED"));
    v->push_back(MsrRowBuilder(kMsrMtrrDefType, "IA32_MTRR_DEF_TYPE", kFamily)
                     .Reserved(~0xcffull)
                     .Checks(kCheckMtrrTypes)
                     .Note("Allowed mask 0xcff (type 7:0, FE bit 10, E bit 11); type must be "
                           "0,1,4,5,6 (#GP, host too). mtrr.c kvm_mtrr_valid"));
    return v;
  }();
  return *rows;
}

std::string IndexName(const MsrRow& row, uint32_t index) {
  if (row.index == kMsrMtrrFix4kC0000) {
    return absl::StrFormat("IA32_MTRR_FIX4K_%05X", 0xc0000 + (index - row.index) * 0x8000);
  }
  if (row.index == row.last) return row.name;
  return absl::StrFormat("MTRR_UNIMPLEMENTED_%#x", index);
}

absl::Span<const MsrRow> RowsSpan() { return absl::MakeConstSpan(Rows()); }

absl::Status Install(Controller& controller, const CpuProfile& profile) {
  return InstallTableHandler(controller, std::make_unique<TableHandler>(
                                             controller.layout(), profile,
                                             RowsToInstall(MtrrPatFamily(), profile), &IndexName));
}

}  // namespace

absl::Span<const MsrRow> MtrrPatRows() { return RowsSpan(); }

MsrRow ResolveMtrrPatRow(const MsrRow& row, const CpuProfile& profile) {
  return ResolveRow(MtrrPatFamily(), row, profile);
}

const MsrFamilyDef& MtrrPatFamily() {
  static constexpr MsrFamilyDef kDef = {kFamily, &RowsSpan, nullptr, &Install};
  return kDef;
}

}  // namespace msrtrace
