// Every MSR index in KVM's own lists of the MSRs it saves, emulates or reports as features
// (Linux 6.16 arch/x86/kvm/x86.c: msrs_to_save_base, msrs_to_save_pmu, emulated_msrs_all,
// msr_based_features_all_except_vmx plus KVM_FIRST_EMULATED_VMX_MSR..KVM_LAST_EMULATED_VMX_MSR)
// has a row in the reference table, and the row is listed (`msrtrace msrs --profile=NAME`,
// MsrTable(profile)) on at least one built-in profile. The few indices no built-in profile
// enables are listed in kNoProfile with the reason; they still must have a row.
#include <cstdint>
#include <vector>

#include "absl/strings/str_format.h"
#include "gtest/gtest.h"
#include "handlers/cpu_profile.h"
#include "handlers/msr_table.h"

namespace msrtrace {
namespace {

struct KvmList {
  const char* name;
  std::vector<uint32_t> indices;
};

const std::vector<KvmList>& KvmLists() {
  static const auto* lists = new std::vector<KvmList>{
      {"msrs_to_save_base",
       {0x174, 0x175, 0x176,      0xc0000081, 0xc0000083, 0xc0000102, 0xc0000084, 0xc0000082,
        0x10,  0x277, 0xc0010117, 0x3a,       0xd90,      0xc0000103, 0x48,       0x122,
        0x570, 0x571, 0x572,      0x560,      0x561,      0x580,      0x581,      0x582,
        0x583, 0x584, 0x585,      0x586,      0x587,      0xe1,       0x1c4,      0x1c5}},
      {"msrs_to_save_pmu",
       {0x309,      0x30a,      0x30b,      0x38d,      0x38e,      0x38f,      0x3f1,
        0x600,      0x3f2,      0xc1,       0xc2,       0xc3,       0xc4,       0xc5,
        0xc6,       0xc7,       0xc8,       0x186,      0x187,      0x188,      0x189,
        0x18a,      0x18b,      0x18c,      0x18d,      0xc0010000, 0xc0010001, 0xc0010002,
        0xc0010003, 0xc0010004, 0xc0010005, 0xc0010006, 0xc0010007, 0xc0010200, 0xc0010202,
        0xc0010204, 0xc0010206, 0xc0010208, 0xc001020a, 0xc0010201, 0xc0010203, 0xc0010205,
        0xc0010207, 0xc0010209, 0xc001020b, 0xc0000301, 0xc0000300, 0xc0000302}},
      {"emulated_msrs_all",
       {0x12,       0x11,       0x4b564d01, 0x4b564d00, 0x40000000, 0x40000001, 0x40000020,
        0x40000021, 0x40000022, 0x40000023, 0x40000100, 0x40000101, 0x40000102, 0x40000103,
        0x40000104, 0x40000105, 0x40000003, 0x40000002, 0x40000010, 0x40000080, 0x400000b0,
        0x40000073, 0x40000106, 0x40000107, 0x40000108, 0x40000118, 0x400000ff, 0x400000f1,
        0x400000f2, 0x400000f3, 0x400000f4, 0x400000f5, 0x4b564d02, 0x4b564d03, 0x4b564d04,
        0x4b564d06, 0x4b564d07, 0x3b,       0x6e0,      0x10a,      0x345,      0x1a0,
        0x17a,      0x17b,      0x4d0,      0x9e,       0x34,       0xce,       0x140,
        0xc001011f, 0xc0000104, 0x1fc,      0x8b,       0x480,      0x48d,      0x48e,
        0x48f,      0x490,      0x485,      0x486,      0x488,      0x48a,      0x48b,
        0x48c,      0x491,      0xc0010015, 0x4b564d05}},
      {"msr_based_features_all",
       {0xc0011029, 0x8b,  0x10a, 0x345, 0xce,  0x480, 0x481, 0x482, 0x483, 0x484, 0x485, 0x486,
        0x487,      0x488, 0x489, 0x48a, 0x48b, 0x48c, 0x48d, 0x48e, 0x48f, 0x490, 0x491}},
  };
  return *lists;
}

// Indices no built-in profile enables, with the reason.
struct Exception {
  uint32_t index;
  const char* reason;
};
constexpr Exception kNoProfile[] = {
    {0xd90, "IA32_BNDCFGS needs host and guest MPX; no profile has MPX (removed from CPUs)"},
    {0x560, "RTIT needs kvm_intel.pt_mode=host_guest; no profile enables guest PT"},
    {0x561, "RTIT, as 0x560"},
    {0x570, "RTIT, as 0x560"},
    {0x571, "RTIT, as 0x560"},
    {0x572, "RTIT, as 0x560"},
    {0x580, "RTIT, as 0x560"},
    {0x581, "RTIT, as 0x560"},
    {0x582, "RTIT, as 0x560"},
    {0x583, "RTIT, as 0x560"},
    {0x584, "RTIT, as 0x560"},
    {0x585, "RTIT, as 0x560"},
    {0x586, "RTIT, as 0x560"},
    {0x587, "RTIT, as 0x560"},
    {0x3f1, "PEBS_ENABLE needs PERF_CAPABILITIES PEBS; no profile has guest PEBS"},
    {0x3f2, "PEBS_DATA_CFG, as 0x3f1"},
    {0x600, "DS_AREA, as 0x3f1"},
};

const char* ExceptionReason(uint32_t index) {
  for (const Exception& e : kNoProfile) {
    if (e.index == index) return e.reason;
  }
  return nullptr;
}

bool Covers(const std::vector<MsrRow>& rows, uint32_t index) {
  for (const MsrRow& r : rows) {
    if (index >= r.index && index <= r.last) return true;
  }
  return false;
}

TEST(KvmListsTest, EveryIndexIsListedOnSomeProfile) {
  std::vector<std::vector<MsrRow>> tables;
  for (const CpuProfile& p : BuiltinProfiles()) tables.push_back(MsrTable(p));
  const std::vector<MsrRow> all = MsrTable();
  int checked = 0;
  for (const KvmList& list : KvmLists()) {
    for (uint32_t index : list.indices) {
      ++checked;
      EXPECT_TRUE(Covers(all, index))
          << absl::StrFormat("%s: %#x has no row in the reference table", list.name, index);
      bool listed = false;
      for (const auto& t : tables) listed |= Covers(t, index);
      const char* reason = ExceptionReason(index);
      if (reason == nullptr) {
        EXPECT_TRUE(listed) << absl::StrFormat("%s: %#x is listed on no built-in profile",
                                               list.name, index);
      } else {
        EXPECT_FALSE(listed) << absl::StrFormat("%#x is listed now: remove it from kNoProfile (%s)",
                                                index, reason);
      }
    }
  }
  EXPECT_EQ(checked, 170);  // 32 + 48 + 67 + 23 indices (duplicates across lists included).
}

// The exceptions are indices of KVM's lists (no stale entries).
TEST(KvmListsTest, ExceptionsAreKvmIndices) {
  for (const Exception& e : kNoProfile) {
    bool found = false;
    for (const KvmList& list : KvmLists()) {
      for (uint32_t index : list.indices) found |= index == e.index;
    }
    EXPECT_TRUE(found) << absl::StrFormat("%#x", e.index);
  }
}

}  // namespace
}  // namespace msrtrace
