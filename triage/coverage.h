// The MSR-table coverage map (`msrtrace coverage`): for every row of the reference handlers'
// table (handlers/msr_table.h), per CPU profile, which cases a set of traces exercises.
//
// Cases (CoverageCaseName):
//   read-ok            a retired RDMSR
//   write-ok           a retired (or ignored) WRMSR
//   gp-reserved        #GP on a write with a reserved bit set: the row's reserved mask, bits at or
//                      above MAXPHYADDR, or an invalid PAT/MTRR memory type (a reserved encoding)
//   gp-read-only       #GP on a write to a read-only MSR (or a host-only one), or one that would
//                      change read-only bits
//   gp-write-only      #GP on a read of a write-only MSR
//   gp-canonical       #GP on a write of a non-canonical address
//   gp-lock            #GP on a write to a locked MSR (FEATURE_CONTROL.LOCK)
//   gp-mode            #GP on an x2APIC MSR while the local APIC is not in x2APIC mode
//   gp-feature-absent  #GP on a row the profile does not have (CPUID feature or vendor absent)
//   gp-other           a #GP none of the above explains (reported, never counted as coverage)
// A case is applicable to a row when the row's declared masks and checks can produce it; the
// coverage of a row is the applicable cases the traces hit. A #GP's reason is classified from
// the row (resolved for the profile) and the value written, in the order listed above (read-only
// first, since KVM rejects those writes before looking at the value). Accesses to MSRs no row
// declares are counted per profile as "unknown" (#GP or ignored by the unknown-MSR policy).
//
// Traces are read, not replayed: the recorded outcome of each event is what counts. Events
// without a recorded outcome (kind unspecified) are counted as such and otherwise skipped,
// unless the builder replays them (CoverageBuilder::Create, `msrtrace coverage --replay`).
// Traces of a handler set other than "reference" are skipped: the table describes the
// reference set only.
#ifndef MSRTRACE_TRIAGE_COVERAGE_H_
#define MSRTRACE_TRIAGE_COVERAGE_H_

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/optional.h"
#include "handlers/cpu_profile.h"
#include "handlers/msr_table.h"
#include "harness/trace/trace_file.h"
#include "proto/report.pb.h"

namespace msrtrace::triage {

enum class CoverageCase : uint8_t {
  kReadOk = 0,
  kWriteOk,
  kGpReserved,
  kGpReadOnly,
  kGpWriteOnly,
  kGpCanonical,
  kGpLock,
  kGpMode,
  kGpFeatureAbsent,
  kGpOther,
  kCount,
};
inline constexpr int kNumCoverageCases = static_cast<int>(CoverageCase::kCount);
const char* CoverageCaseName(CoverageCase c);
absl::optional<CoverageCase> ParseCoverageCase(absl::string_view name);

// Bit i set = case i can happen on `row` (`present`: the row exists on the profile).
uint32_t ApplicableCases(const MsrRow& row, bool present);

// The reason of a #GP on an access to a row present on `profile`. `value` is the value written
// (nullopt when the trace does not know it). `row` is resolved for the profile (MsrTable(p)).
CoverageCase ClassifyGp(const MsrRow& row, const CpuProfile& profile, Access access,
                        absl::optional<uint64_t> value);

struct RowCoverage {
  MsrRow row;
  bool present = true;      // The row exists on the profile.
  uint32_t applicable = 0;  // ApplicableCases.
  std::array<uint64_t, kNumCoverageCases> counts{};

  int applicable_count() const;
  int covered_count() const;  // Applicable cases with a count > 0.
};

struct ProfileCoverage {
  std::string profile;
  uint64_t traces = 0;
  uint64_t events = 0;
  std::vector<RowCoverage> rows;  // Every row of MsrTable(), sorted by index.
  // Accesses to MSRs no row declares.
  uint64_t unknown_gp = 0;
  uint64_t unknown_ignored = 0;
  uint64_t unknown_retired = 0;  // A handler outside the table (a team's row) retired it.
  uint64_t unknown_indices = 0;  // Distinct indices.
  uint64_t vmm_errors = 0;
  uint64_t no_outcome = 0;  // Events without a recorded outcome.

  int applicable_count() const;
  int covered_count() const;
};

struct CoverageReport {
  uint64_t traces = 0;
  uint64_t skipped_traces = 0;  // Other handler sets or, with a profile filter, other profiles.
  std::vector<ProfileCoverage> profiles;  // Sorted by name.
};

// Accumulates traces into a report. Per event: one binary search in the profile's rows, no
// allocation. Not thread-safe.
class CoverageBuilder {
 public:
  // `only_profile` non-empty: count only traces of that profile (and report it even with none).
  // Errors (kInvalidArgument): an unknown profile name.
  // `replay_unrecorded`: events without a recorded outcome (fuzz corpora: the mutator clears
  // them) are run on a machine built from the trace header (its handler set, profile and
  // snapshot; every event runs, so state carries over) and count with the outcome they get.
  static absl::StatusOr<CoverageBuilder> Create(const std::string& only_profile = "",
                                                bool replay_unrecorded = false);

  // Adds one trace. Errors: the reader's (corrupt record, naming the offset) and an unknown CPU
  // profile in the header.
  [[nodiscard]] absl::Status Add(TraceReader& reader);
  [[nodiscard]] absl::Status AddFile(const std::string& path);

  CoverageReport Finish() const;

 private:
  struct PerProfile {
    const CpuProfile* profile = nullptr;
    ProfileCoverage coverage;
    std::vector<size_t> present;  // Positions in coverage.rows of present rows, by index.
    std::vector<size_t> absent;   // Positions of absent rows, by index.
    absl::flat_hash_set<uint32_t> unknown;
  };
  CoverageBuilder() = default;
  PerProfile& ProfileState(const CpuProfile& profile);

  std::string only_profile_;
  bool replay_unrecorded_ = false;
  std::vector<PerProfile> profiles_;
  uint64_t traces_ = 0;
  uint64_t skipped_ = 0;
};

// The report as JSON (docs/triage.md documents the keys), as a self-contained HTML page (inline
// CSS, no scripts or external resources), and as a short text summary (one line per profile).
std::string CoverageJson(const CoverageReport& report);
// The report as the message CoverageJson prints (proto/report.proto CoverageReport).
report::CoverageReport CoverageMessage(const CoverageReport& report);
std::string CoverageHtml(const CoverageReport& report);
std::string CoverageSummary(const CoverageReport& report);

// Cases covered in `baseline_json` (a previous CoverageJson) that `report` does not cover, as
// "profile NAME (0xINDEX) case" strings (a profile missing altogether: "profile"). Errors
// (kInvalidArgument): the baseline is not a coverage JSON report.
[[nodiscard]] absl::StatusOr<std::vector<std::string>> CoverageDrops(
    const CoverageReport& report, absl::string_view baseline_json);

}  // namespace msrtrace::triage

#endif  // MSRTRACE_TRIAGE_COVERAGE_H_
