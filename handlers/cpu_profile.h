// CPU profiles: the guest CPU model a reference handler set emulates. KVM's MSR behaviour depends
// on guest CPUID (feature bits), on the vendor, and on a few host facts (MAXPHYADDR, LA57);
// a profile fixes all of them so that a trace names its profile and replays the same anywhere.
#ifndef MSRTRACE_HANDLERS_CPU_PROFILE_H_
#define MSRTRACE_HANDLERS_CPU_PROFILE_H_

#include <vector>

#include "absl/strings/string_view.h"
#include "harness/core/cpu_profile.h"

namespace msrtrace {

// The type (Feature, CpuProfile) is harness/core/cpu_profile.h; this is the built-in catalogue.
const char* FeatureName(Feature f);

// The built-in profiles, in a stable order; the first is the default.
const std::vector<CpuProfile>& BuiltinProfiles();
const CpuProfile& DefaultProfile();
// The profile named `name`, or nullptr.
const CpuProfile* FindProfile(absl::string_view name);

}  // namespace msrtrace

#endif  // MSRTRACE_HANDLERS_CPU_PROFILE_H_
