#include "harness/trace/trace_proto.h"

#include <string>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"
#include "harness/core/status_macros.h"

namespace msrtrace {
namespace {

// Largest numbers of the enums in proto/trace.proto that this reader knows.
constexpr int kMaxPolicy = static_cast<int>(UnknownMsrPolicy::kFail);
constexpr int kMaxVendor = static_cast<int>(Vendor::kAmdSvm);
constexpr int kMaxKind = static_cast<int>(RecordedKind::kHostFailed);
constexpr int kMaxRoute = static_cast<int>(MsrRoute::kFilterGp);
constexpr uint32_t kMaxInstructionLength = 15;  // ref: SDM Vol2 §2.3.11 (15-byte limit).
constexpr uint32_t kMaxVector = 31;

// The proto enums use the numbers of the plain enums, so conversion is a range check and a cast.
static_assert(proto::UNKNOWN_MSR_POLICY_INJECT_GP == static_cast<int>(UnknownMsrPolicy::kInjectGp));
static_assert(proto::UNKNOWN_MSR_POLICY_IGNORE == static_cast<int>(UnknownMsrPolicy::kIgnore));
static_assert(proto::UNKNOWN_MSR_POLICY_FAIL == static_cast<int>(UnknownMsrPolicy::kFail));
static_assert(proto::UnknownMsrPolicy_MAX == kMaxPolicy);
static_assert(proto::VENDOR_INTEL_VMX == static_cast<int>(Vendor::kIntelVmx));
static_assert(proto::VENDOR_AMD_SVM == static_cast<int>(Vendor::kAmdSvm));
static_assert(proto::Vendor_MAX == kMaxVendor);
static_assert(proto::RECORDED_KIND_UNSPECIFIED == static_cast<int>(RecordedKind::kUnspecified));
static_assert(proto::RECORDED_KIND_RETIRED == static_cast<int>(RecordedKind::kRetired));
static_assert(proto::RECORDED_KIND_GP_INJECTED == static_cast<int>(RecordedKind::kGpInjected));
static_assert(proto::RECORDED_KIND_VMM_ERROR == static_cast<int>(RecordedKind::kVmmError));
static_assert(proto::RECORDED_KIND_IGNORED == static_cast<int>(RecordedKind::kIgnored));
static_assert(proto::RECORDED_KIND_HOST_FAILED == static_cast<int>(RecordedKind::kHostFailed));
static_assert(proto::MSR_ROUTE_KERNEL == static_cast<int>(MsrRoute::kKernel));
static_assert(proto::MSR_ROUTE_USERSPACE_INVAL == static_cast<int>(MsrRoute::kUserspaceInval));
static_assert(proto::MSR_ROUTE_USERSPACE_UNKNOWN == static_cast<int>(MsrRoute::kUserspaceUnknown));
static_assert(proto::MSR_ROUTE_USERSPACE_FILTER == static_cast<int>(MsrRoute::kUserspaceFilter));
static_assert(proto::MSR_ROUTE_FILTER_GP == static_cast<int>(MsrRoute::kFilterGp));
static_assert(proto::MsrRoute_MAX == kMaxRoute);
static_assert(proto::RecordedKind_MAX == kMaxKind);

absl::Status Invalid(absl::string_view msg) { return absl::InvalidArgumentError(msg); }
template <typename... Args>
absl::Status Invalid(const absl::FormatSpec<Args...>& f, const Args&... args) {
  return absl::InvalidArgumentError(absl::StrFormat(f, args...));
}

absl::Status CheckPolicy(int policy) {
  if (policy == 0) return Invalid("header.unknown_msr_policy is unspecified");
  if (policy < 0 || policy > kMaxPolicy) {
    return Invalid("header.unknown_msr_policy %d is not a known policy (1..%d)", policy,
                   kMaxPolicy);
  }
  return absl::OkStatus();
}

absl::Status CheckVendor(int vendor) {
  if (vendor == 0) return Invalid("exit.vendor is unspecified");
  if (vendor < 0 || vendor > kMaxVendor) {
    return Invalid("exit.vendor %d is not a known vendor (1..%d)", vendor, kMaxVendor);
  }
  return absl::OkStatus();
}

absl::Status CheckRoute(int route) {
  if (route < 0 || route > kMaxRoute) {
    return Invalid("outcome.route %d is not a known route (0..%d)", route, kMaxRoute);
  }
  return absl::OkStatus();
}

absl::Status CheckKind(int kind) {
  if (kind < 0 || kind > kMaxKind) {
    return Invalid("outcome.kind %d is not a known kind (0..%d)", kind, kMaxKind);
  }
  return absl::OkStatus();
}

absl::Status CheckInstructionLength(uint32_t len, uint32_t known) {
  const bool required = (known & kFieldInstrLength) != 0;
  if (len > kMaxInstructionLength || (required && len == 0)) {
    return Invalid("exit.instruction_length %u is not in %u..15", len, required ? 1 : 0);
  }
  return absl::OkStatus();
}

absl::Status CheckVector(absl::string_view where, uint32_t vector) {
  if (vector > kMaxVector) {
    return Invalid("%s.vector %u is not an exception vector (0..31)", where, vector);
  }
  return absl::OkStatus();
}

// Proto3 `string` fields must hold UTF-8: protobuf refuses to parse anything else, so a value
// that is not UTF-8 is rejected here, before a writer could put it on disk (RFC 3629: no
// overlong forms, no surrogates, nothing above U+10FFFF).
bool IsUtf8(absl::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    int len;
    uint32_t cp;
    if ((c & 0xe0) == 0xc0) {
      len = 2;
      cp = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
      len = 3;
      cp = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
      len = 4;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (s.size() - i < static_cast<size_t>(len)) return false;
    for (int k = 1; k < len; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3f);
    }
    static constexpr uint32_t kMinForLength[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMinForLength[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
      return false;
    }
    i += len;
  }
  return true;
}

absl::Status CheckUtf8(absl::string_view what, absl::string_view s) {
  if (IsUtf8(s)) return absl::OkStatus();
  return Invalid("%s is not valid UTF-8", what);
}

// Names must be non-empty and unique within one list.
absl::Status CheckNames(absl::string_view what, const std::vector<std::string>& names) {
  absl::flat_hash_set<absl::string_view> seen;
  seen.reserve(names.size());
  for (size_t i = 0; i < names.size(); ++i) {
    if (names[i].empty()) return Invalid("%s[%u] has an empty name", what, i);
    RETURN_IF_ERROR(CheckUtf8(absl::StrFormat("%s[%u] name", what, i), names[i]));
    if (!seen.insert(names[i]).second) {
      return Invalid("%s[%u]: duplicate slot name \"%s\"", what, i, names[i]);
    }
  }
  return absl::OkStatus();
}

absl::Status PendingFromProto(absl::string_view where, const proto::PendingException& p,
                              PendingException* out) {
  RETURN_IF_ERROR(CheckVector(where, p.vector()));
  out->valid = true;
  out->vector = static_cast<uint8_t>(p.vector());
  out->has_error_code = p.has_error_code();
  out->error_code = p.error_code();
  out->payload = p.payload();
  return absl::OkStatus();
}

void PendingToProto(const PendingException& e, proto::PendingException* p) {
  p->set_vector(e.vector);
  p->set_has_error_code(e.has_error_code);
  p->set_error_code(e.error_code);
  p->set_payload(e.payload);
}

absl::Status RegsFromProto(const proto::Registers& p, VcpuRegs* out) {
  if (p.gpr_size() != kNumGprs) {
    return Invalid("regs.gpr has %d values, expected %d", p.gpr_size(), kNumGprs);
  }
  for (int i = 0; i < kNumGprs; ++i) out->gpr[i] = p.gpr(i);
  out->rip = p.rip();
  out->rflags = p.rflags();
  out->cr0 = p.cr0();
  out->cr4 = p.cr4();
  out->efer = p.efer();
  out->cs_l = p.cs_l();
  out->interruptibility = p.interruptibility();
  out->pending = PendingException{};
  if (p.has_pending()) {
    RETURN_IF_ERROR(PendingFromProto("regs.pending", p.pending(), &out->pending));
  }
  return absl::OkStatus();
}

void RegsToProto(const VcpuRegs& r, proto::Registers* p) {
  p->clear_gpr();
  for (uint64_t g : r.gpr) p->add_gpr(g);
  p->set_rip(r.rip);
  p->set_rflags(r.rflags);
  p->set_cr0(r.cr0);
  p->set_cr4(r.cr4);
  p->set_efer(r.efer);
  p->set_cs_l(r.cs_l);
  p->set_interruptibility(r.interruptibility);
  if (r.pending.valid) {
    PendingToProto(r.pending, p->mutable_pending());
  } else {
    p->clear_pending();
  }
}

absl::Status Prefixed(absl::string_view prefix, const absl::Status& s) {
  if (s.ok()) return s;
  return absl::Status(s.code(), absl::StrCat(prefix, s.message()));
}

// Everything of a snapshot but the pages.
absl::Status CoreFromProto(const proto::Snapshot& p, Snapshot* out) {
  if (p.memory_size() % kPageSize != 0) {
    return Invalid("snapshot.memory_size %u is not a multiple of 4096", p.memory_size());
  }
  out->memory = SparseMemory(p.memory_size() == 0 ? SparseMemory::kDefaultSize : p.memory_size());
  out->vcpu_slot_names.clear();
  out->vcpus.clear();
  out->vcpus.resize(p.vcpus_size());
  for (int i = 0; i < p.vcpus_size(); ++i) {
    const proto::VcpuState& pv = p.vcpus(i);
    Vcpu& v = out->vcpus[i];
    const std::string where = absl::StrFormat("snapshot.vcpus[%d] (id %u): ", i, pv.id());
    v.id = pv.id();
    if (!pv.has_regs()) return Invalid("%sregs missing", where);
    RETURN_IF_ERROR(Prefixed(where, RegsFromProto(pv.regs(), &v.regs)));
    if (i == 0) {
      for (const proto::SlotValue& s : pv.slots()) out->vcpu_slot_names.push_back(s.name());
    } else if (static_cast<size_t>(pv.slots_size()) != out->vcpu_slot_names.size()) {
      return Invalid("%shas %d slots, vcpus[0] has %u (every vCPU lists the same slots)", where,
                     pv.slots_size(), out->vcpu_slot_names.size());
    }
    v.slots.resize(pv.slots_size());
    for (int j = 0; j < pv.slots_size(); ++j) {
      const proto::SlotValue& s = pv.slots(j);
      if (s.name() != out->vcpu_slot_names[j]) {
        return Invalid(
            "%sslot %d is \"%s\", vcpus[0] has \"%s\" (every vCPU lists the same slots "
            "in the same order)",
            where, j, s.name(), out->vcpu_slot_names[j]);
      }
      v.slots[j] = s.value();
    }
  }
  out->vm_slot_names.clear();
  out->vm_slots.clear();
  for (const proto::SlotValue& s : p.vm_slots()) {
    out->vm_slot_names.push_back(s.name());
    out->vm_slots.push_back(s.value());
  }
  out->handler_states.assign(p.handler_states().begin(), p.handler_states().end());
  return ValidateSnapshot(*out);
}

}  // namespace

// --- Header ---

absl::Status ValidateHeader(const TraceHeader& h) {
  RETURN_IF_ERROR(CheckPolicy(static_cast<int>(h.unknown_msr_policy)));
  if (h.vcpu_count == 0) return Invalid("header.vcpu_count is 0");
  RETURN_IF_ERROR(CheckUtf8("header.producer", h.producer));
  RETURN_IF_ERROR(CheckUtf8("header.cpu_profile", h.cpu_profile));
  RETURN_IF_ERROR(CheckUtf8("header.handler_set", h.handler_set));
  for (size_t i = 0; i < h.labels.size(); ++i) {
    if (h.labels[i].first.empty()) return Invalid("header.labels[%u] has an empty key", i);
    RETURN_IF_ERROR(CheckUtf8(absl::StrFormat("header.labels[%u].key", i), h.labels[i].first));
    RETURN_IF_ERROR(CheckUtf8(absl::StrFormat("header.labels[%u].value", i), h.labels[i].second));
  }
  RETURN_IF_ERROR(CheckUtf8("header.userspace_handler_set", h.routing.userspace_handler_set));
  const absl::Status routing = h.routing.Validate();
  if (!routing.ok()) return Invalid("header.%s", routing.message());
  return absl::OkStatus();
}

absl::StatusOr<TraceHeader> FromProto(const proto::TraceHeader& p) {
  RETURN_IF_ERROR(CheckPolicy(p.unknown_msr_policy()));
  TraceHeader h;
  h.format_major = p.format_major();
  h.format_minor = p.format_minor();
  h.host_events = h.format_minor >= kHostEventsMinor;
  h.producer = p.producer();
  h.cpu_profile = p.cpu_profile();
  h.unknown_msr_policy = static_cast<UnknownMsrPolicy>(p.unknown_msr_policy());
  h.vcpu_count = p.vcpu_count();
  h.handler_set = p.handler_set();
  h.creation_time_ns = p.creation_time_ns();
  for (const proto::Label& l : p.labels()) h.labels.emplace_back(l.key(), l.value());
  h.routing.user_space_msr_mask = p.user_space_msr_reasons();
  h.routing.filter.default_deny = p.msr_filter().default_deny();
  for (const proto::MsrFilterRange& r : p.msr_filter().ranges()) {
    MsrFilterRange& m = h.routing.filter.ranges.emplace_back();
    m.flags = r.flags();
    m.base = r.base();
    m.nmsrs = r.nmsrs();
    m.bitmap.assign(r.bitmap().begin(), r.bitmap().end());
  }
  h.routing.userspace_handler_set = p.userspace_handler_set();
  RETURN_IF_ERROR(ValidateHeader(h));
  return h;
}

void ToProto(const TraceHeader& h, proto::TraceHeader* p) {
  p->set_format_major(h.format_major);
  p->set_format_minor(h.format_minor);
  p->set_producer(h.producer);
  p->set_cpu_profile(h.cpu_profile);
  p->set_unknown_msr_policy(static_cast<proto::UnknownMsrPolicy>(h.unknown_msr_policy));
  p->set_vcpu_count(h.vcpu_count);
  p->set_handler_set(h.handler_set);
  p->set_creation_time_ns(h.creation_time_ns);
  p->clear_labels();
  for (const auto& [key, value] : h.labels) {
    proto::Label* l = p->add_labels();
    l->set_key(key);
    l->set_value(value);
  }
  p->set_user_space_msr_reasons(h.routing.user_space_msr_mask);
  p->clear_msr_filter();
  if (!h.routing.filter.is_allow_all()) {
    proto::MsrFilter* f = p->mutable_msr_filter();
    f->set_default_deny(h.routing.filter.default_deny);
    for (const MsrFilterRange& m : h.routing.filter.ranges) {
      proto::MsrFilterRange* r = f->add_ranges();
      r->set_flags(m.flags);
      r->set_base(m.base);
      r->set_nmsrs(m.nmsrs);
      r->set_bitmap(m.bitmap.data(), m.bitmap.size());
    }
  }
  p->set_userspace_handler_set(h.routing.userspace_handler_set);
}

// --- Snapshot ---

absl::Status ValidateSnapshot(const Snapshot& s) {
  RETURN_IF_ERROR(CheckNames("snapshot vCPU slot", s.vcpu_slot_names));
  RETURN_IF_ERROR(CheckNames("snapshot.vm_slots", s.vm_slot_names));
  if (s.vm_slots.size() != s.vm_slot_names.size()) {
    return Invalid("snapshot has %u VM-wide slot values but %u names", s.vm_slots.size(),
                   s.vm_slot_names.size());
  }
  absl::flat_hash_set<uint32_t> ids;
  for (size_t i = 0; i < s.vcpus.size(); ++i) {
    const Vcpu& v = s.vcpus[i];
    if (!ids.insert(v.id).second) {
      return Invalid("snapshot.vcpus[%u]: duplicate vCPU id %u", i, v.id);
    }
    if (v.slots.size() != s.vcpu_slot_names.size()) {
      return Invalid("snapshot.vcpus[%u] (id %u) has %u slot values but the layout names %u", i,
                     v.id, v.slots.size(), s.vcpu_slot_names.size());
    }
    if (v.regs.pending.valid) {
      RETURN_IF_ERROR(Prefixed(absl::StrFormat("snapshot.vcpus[%u] (id %u): ", i, v.id),
                               CheckVector("regs.pending", v.regs.pending.vector)));
    }
  }
  if (s.memory.size() % kPageSize != 0) {
    return Invalid("snapshot memory size %u is not a multiple of 4096", s.memory.size());
  }
  return absl::OkStatus();
}

absl::StatusOr<Snapshot> FromProto(const proto::Snapshot& p) {
  Snapshot s;
  RETURN_IF_ERROR(CoreFromProto(p, &s));
  if (p.page_count() != 0 && p.page_count() != static_cast<uint64_t>(p.pages_size())) {
    return Invalid("snapshot.page_count %u does not match the %d inline pages", p.page_count(),
                   p.pages_size());
  }
  for (int i = 0; i < p.pages_size(); ++i) {
    RETURN_IF_ERROR(
        Prefixed(absl::StrFormat("snapshot.pages[%d]: ", i), PageFromProto(p.pages(i), &s.memory)));
  }
  return s;
}

void ToProto(const Snapshot& s, proto::Snapshot* p) {
  SnapshotCoreToProto(s, p);
  const std::vector<uint64_t> gpas = s.memory.PageAddresses();
  for (uint64_t gpa : gpas) PageToProto(gpa, s.memory.Page(gpa), p->add_pages());
}

absl::StatusOr<uint64_t> SnapshotCoreFromProto(const proto::Snapshot& p, Snapshot* out) {
  if (p.pages_size() != 0) {
    return Invalid("snapshot core holds %d inline pages (pages are separate records)",
                   p.pages_size());
  }
  RETURN_IF_ERROR(CoreFromProto(p, out));
  if (p.page_count() > out->memory.size() / kPageSize) {
    return Invalid("snapshot.page_count %u exceeds the %u pages of guest memory", p.page_count(),
                   out->memory.size() / kPageSize);
  }
  return p.page_count();
}

void SnapshotCoreToProto(const Snapshot& s, proto::Snapshot* p) {
  p->Clear();
  for (const Vcpu& v : s.vcpus) {
    proto::VcpuState* pv = p->add_vcpus();
    pv->set_id(v.id);
    RegsToProto(v.regs, pv->mutable_regs());
    for (size_t j = 0; j < v.slots.size(); ++j) {
      proto::SlotValue* sv = pv->add_slots();
      if (j < s.vcpu_slot_names.size()) sv->set_name(s.vcpu_slot_names[j]);
      sv->set_value(v.slots[j]);
    }
  }
  for (size_t i = 0; i < s.vm_slots.size(); ++i) {
    proto::SlotValue* sv = p->add_vm_slots();
    if (i < s.vm_slot_names.size()) sv->set_name(s.vm_slot_names[i]);
    sv->set_value(s.vm_slots[i]);
  }
  for (const std::string& st : s.handler_states) p->add_handler_states(st);
  p->set_memory_size(s.memory.size() == SparseMemory::kDefaultSize ? 0 : s.memory.size());
  p->set_page_count(s.memory.PageAddresses().size());
}

absl::Status PageFromProto(const proto::MemoryPage& p, SparseMemory* memory) {
  if (p.data().size() != kPageSize) {
    return Invalid("page at gpa 0x%x has %u bytes, expected 4096", p.gpa(), p.data().size());
  }
  if (p.gpa() % kPageSize != 0) return Invalid("page gpa 0x%x is not 4096-aligned", p.gpa());
  if (p.gpa() >= memory->size()) {
    return Invalid("page gpa 0x%x is outside guest memory (size 0x%x)", p.gpa(), memory->size());
  }
  if (memory->Page(p.gpa()) != nullptr) return Invalid("second page at gpa 0x%x", p.gpa());
  const auto* data = reinterpret_cast<const uint8_t*>(p.data().data());
  if (!memory->SetPage(p.gpa(), absl::MakeConstSpan(data, kPageSize))) {
    return Invalid("page at gpa 0x%x rejected by guest memory", p.gpa());
  }
  return absl::OkStatus();
}

void PageToProto(uint64_t gpa, const uint8_t* page, proto::MemoryPage* p) {
  p->set_gpa(gpa);
  p->set_data(page, kPageSize);
}

// --- Events ---

absl::Status ValidateEvent(const ExitEvent& e) {
  RETURN_IF_ERROR(CheckVendor(static_cast<int>(e.exit.vendor)));
  RETURN_IF_ERROR(CheckInstructionLength(e.exit.instruction_length, e.known));
  RETURN_IF_ERROR(CheckKind(static_cast<int>(e.kind)));
  RETURN_IF_ERROR(CheckRoute(static_cast<int>(e.route)));
  if (e.kind == RecordedKind::kHostFailed && !e.host_initiated) {
    return Invalid("outcome.kind HOST_FAILED on an event that is not host_initiated");
  }
  if (e.host_initiated && e.route != MsrRoute::kUnspecified && e.route != MsrRoute::kKernel) {
    return Invalid("outcome.route %s on a host_initiated event (host accesses are not routed)",
                   MsrRouteName(e.route));
  }
  if (e.pending_out.valid) RETURN_IF_ERROR(CheckVector("outcome.pending", e.pending_out.vector));
  if (!e.error.empty()) RETURN_IF_ERROR(CheckUtf8("outcome.error", e.error));
  if (!e.memory_writes.empty() && (e.known & kFieldMemoryWrites) == 0) {
    return Invalid(
        "outcome.memory_writes has %u writes but known lacks FIELD_MEMORY_WRITES "
        "(bit 8)",
        e.memory_writes.size());
  }
  for (size_t i = 0; i < e.memory_writes.size(); ++i) {
    const RecordedMemoryWrite& w = e.memory_writes[i];
    if (w.bytes.empty()) return Invalid("outcome.memory_writes[%u] is empty", i);
    if (w.gpa + w.bytes.size() < w.gpa) {
      return Invalid("outcome.memory_writes[%u]: gpa 0x%x + %u bytes wraps around", i, w.gpa,
                     w.bytes.size());
    }
  }
  return absl::OkStatus();
}

absl::Status FromProto(const proto::ExitEvent& p, ExitEvent* out,
                       std::vector<std::string>* spare_bytes) {
  if (!p.has_exit()) return Invalid("exit missing");
  const proto::ExitInfo& x = p.exit();
  const proto::Outcome& o = p.outcome();  // The default instance when absent.
  // Range checks that must precede the narrowing casts below.
  RETURN_IF_ERROR(CheckVendor(x.vendor()));
  uint32_t known = p.known();
  for (const int f : p.known_fields()) known |= static_cast<uint32_t>(f);
  RETURN_IF_ERROR(CheckInstructionLength(x.instruction_length(), known));
  RETURN_IF_ERROR(CheckKind(o.kind()));
  RETURN_IF_ERROR(CheckRoute(o.route()));

  out->seq = p.seq();
  out->vcpu_id = p.vcpu_id();
  out->known = known;
  out->volatile_value = p.volatile_value();
  out->lost_before = p.lost_before();
  out->host_initiated = p.host_initiated();
  out->exit.vendor = static_cast<Vendor>(x.vendor());
  out->exit.reason = x.reason();
  out->exit.info1 = x.info1();
  out->exit.instruction_length = static_cast<uint8_t>(x.instruction_length());
  out->exit.host_tsc = x.host_tsc();
  out->exit.host_wall_ns = x.host_wall_ns();
  out->rcx = p.rcx();
  out->rax = p.rax();
  out->rdx = p.rdx();
  out->rip = p.rip();
  out->rflags = p.rflags();
  out->cr0 = p.cr0();
  out->cr4 = p.cr4();
  out->efer = p.efer();
  out->cs_l = p.cs_l();
  out->interruptibility = p.interruptibility();

  out->kind = static_cast<RecordedKind>(o.kind());
  out->rax_out = o.rax_out();
  out->rdx_out = o.rdx_out();
  out->rip_out = o.rip_out();
  out->pending_out = PendingException{};
  if (o.has_pending()) {
    RETURN_IF_ERROR(PendingFromProto("outcome.pending", o.pending(), &out->pending_out));
  }
  std::vector<RecordedMemoryWrite>& writes = out->memory_writes;
  const auto n = static_cast<size_t>(o.memory_writes_size());
  if (spare_bytes != nullptr) {
    while (writes.size() > n) {
      spare_bytes->push_back(std::move(writes.back().bytes));
      writes.pop_back();
    }
    while (writes.size() < n) {
      writes.emplace_back();
      if (!spare_bytes->empty()) {
        writes.back().bytes = std::move(spare_bytes->back());
        spare_bytes->pop_back();
      }
    }
  }
  writes.resize(n);
  for (int i = 0; i < o.memory_writes_size(); ++i) {
    out->memory_writes[i].gpa = o.memory_writes(i).gpa();
    out->memory_writes[i].bytes.assign(o.memory_writes(i).bytes());
  }
  out->memory_writes_digest = o.memory_writes_digest();
  out->error.assign(o.error());
  out->route = static_cast<MsrRoute>(o.route());
  return ValidateEvent(*out);
}

absl::StatusOr<ExitEvent> FromProto(const proto::ExitEvent& p) {
  ExitEvent e;
  RETURN_IF_ERROR(FromProto(p, &e));
  return e;
}

void ToProto(const ExitEvent& e, proto::ExitEvent* p) {
  p->set_seq(e.seq);
  p->set_vcpu_id(e.vcpu_id);
  p->set_known(e.known);
  p->set_volatile_value(e.volatile_value);
  p->set_lost_before(e.lost_before);
  p->set_host_initiated(e.host_initiated);
  proto::ExitInfo* x = p->mutable_exit();
  x->set_vendor(static_cast<proto::Vendor>(e.exit.vendor));
  x->set_reason(e.exit.reason);
  x->set_info1(e.exit.info1);
  x->set_instruction_length(e.exit.instruction_length);
  x->set_host_tsc(e.exit.host_tsc);
  x->set_host_wall_ns(e.exit.host_wall_ns);
  p->set_rcx(e.rcx);
  p->set_rax(e.rax);
  p->set_rdx(e.rdx);
  p->set_rip(e.rip);
  p->set_rflags(e.rflags);
  p->set_cr0(e.cr0);
  p->set_cr4(e.cr4);
  p->set_efer(e.efer);
  p->set_cs_l(e.cs_l);
  p->set_interruptibility(e.interruptibility);
  proto::Outcome* o = p->mutable_outcome();
  o->set_kind(static_cast<proto::RecordedKind>(e.kind));
  o->set_rax_out(e.rax_out);
  o->set_rdx_out(e.rdx_out);
  o->set_rip_out(e.rip_out);
  if (e.pending_out.valid) {
    PendingToProto(e.pending_out, o->mutable_pending());
  } else {
    o->clear_pending();
  }
  o->mutable_memory_writes()->Clear();  // Keeps the cleared elements for reuse by Add().
  for (const RecordedMemoryWrite& w : e.memory_writes) {
    proto::MemoryWrite* pw = o->add_memory_writes();
    pw->set_gpa(w.gpa);
    pw->set_bytes(w.bytes);
  }
  o->set_memory_writes_digest(e.memory_writes_digest);
  o->set_error(e.error);
  o->set_route(static_cast<proto::MsrRoute>(e.route));
}

// --- Trailer ---

absl::StatusOr<TraceTrailer> FromProto(const proto::Trailer& p) {
  TraceTrailer t;
  t.event_count = p.event_count();
  t.final_state_digest = p.final_state_digest();
  return t;
}

void ToProto(const TraceTrailer& t, proto::Trailer* p) {
  p->set_event_count(t.event_count);
  p->set_final_state_digest(t.final_state_digest);
}

}  // namespace msrtrace
