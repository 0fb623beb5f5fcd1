// Round trips of every trace type through proto/trace.proto, and every FromProto validation
// error. Test names read as the validation rules.
#include "harness/trace/trace_proto.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "harness/trace/trace_test_util.h"

namespace msrtrace {
namespace {

using ::msrtrace::testing_util::ExpectEventEq;
using ::msrtrace::testing_util::ExpectHeaderEq;
using ::msrtrace::testing_util::ExpectSnapshotEq;
using ::msrtrace::testing_util::SampleEvent;
using ::msrtrace::testing_util::SampleHeader;
using ::msrtrace::testing_util::SampleSnapshot;
using ::testing::HasSubstr;

// Expects `s` to be kInvalidArgument with a message containing `text`.
#define EXPECT_INVALID(s, text)                                               \
  do {                                                                        \
    const absl::Status status_ = (s);                                         \
    EXPECT_EQ(status_.code(), absl::StatusCode::kInvalidArgument) << status_; \
    EXPECT_THAT(std::string(status_.message()), HasSubstr(text));             \
  } while (0)

// --- Header ---

TEST(TraceProtoTest, EventsWithFewerAndThenMoreMemoryWritesReuseTheSpareBytes) {
  // Converting into one reused ExitEvent, as the reader does: an event without memory writes
  // parks the previous event's byte strings in the spare pool, and the next event with writes
  // takes them back, so a long write (beyond the small-string buffer) keeps its heap buffer.
  ExitEvent with = SampleEvent(1);  // A 40-byte write (heap) after an 8-byte one.
  ExitEvent without = SampleEvent(2);
  without.memory_writes.clear();
  without.known &= ~kFieldMemoryWrites;
  proto::ExitEvent pw, pn;
  ToProto(with, &pw);
  ToProto(without, &pn);
  std::vector<std::string> spare;
  ExitEvent out;
  ASSERT_TRUE(FromProto(pw, &out, &spare).ok());
  ASSERT_EQ(out.memory_writes.size(), 2u);
  const char* buffer = out.memory_writes[1].bytes.data();
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(FromProto(pn, &out, &spare).ok());
    EXPECT_TRUE(out.memory_writes.empty());
    EXPECT_EQ(spare.size(), 2u);
    ASSERT_TRUE(FromProto(pw, &out, &spare).ok());
    ExpectEventEq(out, with);
    EXPECT_TRUE(spare.empty());
    EXPECT_EQ(out.memory_writes[1].bytes.data(), buffer) << "the 40-byte string was reallocated";
  }
}

TEST(TraceProtoTest, HeaderRoundTrips) {
  const TraceHeader h = SampleHeader();
  proto::TraceHeader p;
  ToProto(h, &p);
  absl::StatusOr<TraceHeader> back = FromProto(p);
  ASSERT_TRUE(back.ok()) << back.status();
  ExpectHeaderEq(*back, h);
}

proto::TraceHeader SampleHeaderProto() {
  proto::TraceHeader p;
  ToProto(SampleHeader(), &p);
  return p;
}

TEST(TraceProtoTest, HeaderRejectsUnspecifiedUnknownMsrPolicy) {
  proto::TraceHeader p = SampleHeaderProto();
  p.set_unknown_msr_policy(proto::UNKNOWN_MSR_POLICY_UNSPECIFIED);
  EXPECT_INVALID(FromProto(p).status(), "header.unknown_msr_policy is unspecified");
}

TEST(TraceProtoTest, HeaderRejectsUnknownMsrPolicyNumber) {
  proto::TraceHeader p = SampleHeaderProto();
  p.set_unknown_msr_policy(static_cast<proto::UnknownMsrPolicy>(9));
  EXPECT_INVALID(FromProto(p).status(), "header.unknown_msr_policy 9 is not a known policy");
}

TEST(TraceProtoTest, HeaderRejectsZeroVcpuCount) {
  proto::TraceHeader p = SampleHeaderProto();
  p.set_vcpu_count(0);
  EXPECT_INVALID(FromProto(p).status(), "header.vcpu_count is 0");
}

TEST(TraceProtoTest, HeaderRejectsEmptyLabelKey) {
  proto::TraceHeader p = SampleHeaderProto();
  p.mutable_labels(1)->clear_key();
  EXPECT_INVALID(FromProto(p).status(), "header.labels[1] has an empty key");
}

TEST(TraceProtoTest, StringsThatAreNotUtf8AreRejectedBeforeTheyReachDisk) {
  TraceHeader h = SampleHeader();
  h.producer = "rec\xff";
  EXPECT_INVALID(ValidateHeader(h), "header.producer is not valid UTF-8");
  h = SampleHeader();
  h.labels.back().second = "\xc0\x80";  // Overlong NUL.
  EXPECT_INVALID(ValidateHeader(h), "value is not valid UTF-8");
  h = SampleHeader();
  h.handler_set = "\xed\xa0\x80";  // A UTF-16 surrogate.
  EXPECT_INVALID(ValidateHeader(h), "header.handler_set is not valid UTF-8");
  h = SampleHeader();
  h.producer = "caf\xc3\xa9 \xf0\x9f\x94\xa5";  // Well-formed 2- and 4-byte sequences.
  EXPECT_TRUE(ValidateHeader(h).ok());

  Snapshot snap;
  snap.vcpu_slot_names = {"IA32_PAT", "\xff"};
  EXPECT_INVALID(ValidateSnapshot(snap), "name is not valid UTF-8");

  ExitEvent e;
  e.exit.vendor = Vendor::kIntelVmx;
  e.kind = RecordedKind::kVmmError;
  e.error = "bad \xe2\x82";  // Truncated 3-byte sequence.
  EXPECT_INVALID(ValidateEvent(e), "outcome.error is not valid UTF-8");
}

TEST(TraceProtoTest, ValidateHeaderAppliesTheSameRulesToPlainHeaders) {
  TraceHeader h = SampleHeader();
  h.unknown_msr_policy = UnknownMsrPolicy::kUnspecified;
  EXPECT_INVALID(ValidateHeader(h), "unspecified");
}

// --- Snapshot ---

TEST(TraceProtoTest, SnapshotWithInlinePagesRoundTrips) {
  const Snapshot s = SampleSnapshot(3);
  proto::Snapshot p;
  ToProto(s, &p);
  EXPECT_EQ(p.pages_size(), 3);
  absl::StatusOr<Snapshot> back = FromProto(p);
  ASSERT_TRUE(back.ok()) << back.status();
  ExpectSnapshotEq(*back, s);
}

TEST(TraceProtoTest, SnapshotCoreAndPageRecordsRoundTrip) {
  const Snapshot s = SampleSnapshot(3);
  proto::Snapshot core;
  SnapshotCoreToProto(s, &core);
  EXPECT_EQ(core.pages_size(), 0);
  Snapshot back;
  absl::StatusOr<uint64_t> pages = SnapshotCoreFromProto(core, &back);
  ASSERT_TRUE(pages.ok()) << pages.status();
  ASSERT_EQ(*pages, 3u);
  for (uint64_t gpa : s.memory.PageAddresses()) {
    proto::MemoryPage page;
    PageToProto(gpa, s.memory.Page(gpa), &page);
    ASSERT_TRUE(PageFromProto(page, &back.memory).ok());
  }
  ExpectSnapshotEq(back, s);
}

TEST(TraceProtoTest, EmptySnapshotRoundTripsWithDefaultMemorySize) {
  proto::Snapshot p;
  const Snapshot empty;
  ToProto(empty, &p);
  EXPECT_EQ(p.memory_size(), 0u);  // 0 = the default.
  absl::StatusOr<Snapshot> back = FromProto(p);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->memory.size(), SparseMemory::kDefaultSize);
}

TEST(TraceProtoTest, NonDefaultMemorySizeRoundTrips) {
  Snapshot s = SampleSnapshot(0);
  s.memory = SparseMemory(1 << 20);
  proto::Snapshot p;
  ToProto(s, &p);
  absl::StatusOr<Snapshot> back = FromProto(p);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->memory.size(), 1u << 20);
}

proto::Snapshot SampleSnapshotProto(int pages = 1) {
  proto::Snapshot p;
  ToProto(SampleSnapshot(pages), &p);
  return p;
}

TEST(TraceProtoTest, SnapshotRejectsGprCountOtherThan16) {
  proto::Snapshot p = SampleSnapshotProto();
  p.mutable_vcpus(1)->mutable_regs()->add_gpr(1);
  EXPECT_INVALID(FromProto(p).status(), "snapshot.vcpus[1] (id 7): regs.gpr has 17 values");
  p.mutable_vcpus(1)->mutable_regs()->clear_gpr();
  EXPECT_INVALID(FromProto(p).status(), "regs.gpr has 0 values, expected 16");
}

TEST(TraceProtoTest, SnapshotRejectsVcpuWithoutRegisters) {
  proto::Snapshot p = SampleSnapshotProto();
  p.mutable_vcpus(0)->clear_regs();
  EXPECT_INVALID(FromProto(p).status(), "snapshot.vcpus[0] (id 0): regs missing");
}

TEST(TraceProtoTest, SnapshotRejectsDuplicateVcpuId) {
  proto::Snapshot p = SampleSnapshotProto();
  p.mutable_vcpus(1)->set_id(0);
  EXPECT_INVALID(FromProto(p).status(), "snapshot.vcpus[1]: duplicate vCPU id 0");
}

TEST(TraceProtoTest, SnapshotRejectsEmptySlotName) {
  proto::Snapshot p = SampleSnapshotProto();
  for (auto& v : *p.mutable_vcpus()) v.mutable_slots(1)->clear_name();
  EXPECT_INVALID(FromProto(p).status(), "slot[1] has an empty name");
}

TEST(TraceProtoTest, SnapshotRejectsDuplicateSlotName) {
  proto::Snapshot p = SampleSnapshotProto();
  for (auto& v : *p.mutable_vcpus()) v.mutable_slots(1)->set_name("TSC_OFFSET");
  EXPECT_INVALID(FromProto(p).status(), "duplicate slot name \"TSC_OFFSET\"");
}

TEST(TraceProtoTest, SnapshotRejectsEmptyOrDuplicateVmSlotName) {
  proto::Snapshot p = SampleSnapshotProto();
  p.mutable_vm_slots(0)->clear_name();
  EXPECT_INVALID(FromProto(p).status(), "snapshot.vm_slots[0] has an empty name");
  p.mutable_vm_slots(0)->set_name("KVM_CLOCK");
  p.mutable_vm_slots(1)->set_name("KVM_CLOCK");
  EXPECT_INVALID(FromProto(p).status(), "snapshot.vm_slots[1]: duplicate slot name");
}

TEST(TraceProtoTest, SnapshotRejectsVcpusWithDifferentSlotNames) {
  proto::Snapshot p = SampleSnapshotProto();
  p.mutable_vcpus(1)->mutable_slots(1)->set_name("OTHER");
  EXPECT_INVALID(FromProto(p).status(),
                 "snapshot.vcpus[1] (id 7): slot 1 is \"OTHER\", vcpus[0] has \"APIC_BASE\"");
}

TEST(TraceProtoTest, SnapshotRejectsVcpusWithDifferentSlotCounts) {
  proto::Snapshot p = SampleSnapshotProto();
  p.mutable_vcpus(1)->mutable_slots()->RemoveLast();
  EXPECT_INVALID(FromProto(p).status(), "snapshot.vcpus[1] (id 7): has 1 slots, vcpus[0] has 2");
}

TEST(TraceProtoTest, SnapshotRejectsPendingVectorAbove31) {
  proto::Snapshot p = SampleSnapshotProto();
  p.mutable_vcpus(1)->mutable_regs()->mutable_pending()->set_vector(32);
  EXPECT_INVALID(FromProto(p).status(), "regs.pending.vector 32 is not an exception vector");
}

TEST(TraceProtoTest, SnapshotRejectsMemorySizeNotAMultipleOf4096) {
  proto::Snapshot p = SampleSnapshotProto();
  p.set_memory_size(4097);
  EXPECT_INVALID(FromProto(p).status(), "snapshot.memory_size 4097 is not a multiple of 4096");
}

TEST(TraceProtoTest, PageMustBeExactly4096Bytes) {
  proto::Snapshot p = SampleSnapshotProto();
  p.mutable_pages(0)->mutable_data()->pop_back();
  EXPECT_INVALID(FromProto(p).status(), "snapshot.pages[0]: page at gpa 0x10000 has 4095 bytes");
  p.mutable_pages(0)->mutable_data()->append(2, 'x');
  EXPECT_INVALID(FromProto(p).status(), "has 4097 bytes, expected 4096");
}

TEST(TraceProtoTest, PageGpaMustBeAligned) {
  proto::Snapshot p = SampleSnapshotProto();
  p.mutable_pages(0)->set_gpa(0x10008);
  EXPECT_INVALID(FromProto(p).status(), "page gpa 0x10008 is not 4096-aligned");
}

TEST(TraceProtoTest, PageMustBeInsideGuestMemory) {
  proto::Snapshot p = SampleSnapshotProto();
  p.set_memory_size(0x10000);
  EXPECT_INVALID(FromProto(p).status(), "page gpa 0x10000 is outside guest memory");
}

TEST(TraceProtoTest, SecondPageAtTheSameGpaIsRejected) {
  proto::Snapshot p = SampleSnapshotProto(2);
  p.mutable_pages(1)->set_gpa(p.pages(0).gpa());
  EXPECT_INVALID(FromProto(p).status(), "snapshot.pages[1]: second page at gpa 0x10000");
}

TEST(TraceProtoTest, SnapshotCoreMustNotHoldInlinePages) {
  proto::Snapshot p = SampleSnapshotProto(1);
  Snapshot s;
  EXPECT_INVALID(SnapshotCoreFromProto(p, &s).status(), "snapshot core holds 1 inline pages");
}

TEST(TraceProtoTest, SnapshotCorePageCountMustFitInGuestMemory) {
  proto::Snapshot p;
  SnapshotCoreToProto(SampleSnapshot(0), &p);
  p.set_memory_size(2 * kPageSize);
  p.set_page_count(3);
  Snapshot s;
  EXPECT_INVALID(SnapshotCoreFromProto(p, &s).status(),
                 "snapshot.page_count 3 exceeds the 2 pages of guest memory");
}

TEST(TraceProtoTest, InlinePageCountMustMatchPages) {
  proto::Snapshot p = SampleSnapshotProto(2);
  p.set_page_count(3);
  EXPECT_INVALID(FromProto(p).status(), "snapshot.page_count 3 does not match the 2 inline pages");
  p.set_page_count(2);
  EXPECT_TRUE(FromProto(p).ok());
}

TEST(TraceProtoTest, ValidateSnapshotRejectsSlotValuesWithoutNames) {
  Snapshot s = SampleSnapshot(0);
  s.vcpus[1].slots.push_back(1);
  EXPECT_INVALID(ValidateSnapshot(s),
                 "snapshot.vcpus[1] (id 7) has 3 slot values but the layout "
                 "names 2");
  s = SampleSnapshot(0);
  s.vm_slots.pop_back();
  EXPECT_INVALID(ValidateSnapshot(s), "snapshot has 1 VM-wide slot values but 2 names");
}

// --- Events ---

TEST(TraceProtoTest, EventWithEveryFieldRoundTrips) {
  const ExitEvent e = SampleEvent(42);
  proto::ExitEvent p;
  ToProto(e, &p);
  absl::StatusOr<ExitEvent> back = FromProto(p);
  ASSERT_TRUE(back.ok()) << back.status();
  ExpectEventEq(*back, e);
}

TEST(TraceProtoTest, EventOfEveryVendorAndKindRoundTrips) {
  for (Exit x : {Exit::Rdmsr(), Exit::SvmMsr(Access::kWrite, 5)}) {
    for (RecordedKind k :
         {RecordedKind::kUnspecified, RecordedKind::kRetired, RecordedKind::kGpInjected,
          RecordedKind::kVmmError, RecordedKind::kIgnored}) {
      ExitEvent e = SampleEvent(1);
      e.exit = x;
      e.kind = k;
      proto::ExitEvent p;
      ToProto(e, &p);
      absl::StatusOr<ExitEvent> back = FromProto(p);
      ASSERT_TRUE(back.ok()) << back.status();
      ExpectEventEq(*back, e);
    }
  }
}

TEST(TraceProtoTest, ConvertingIntoAReusedEventResetsEveryField) {
  proto::ExitEvent big, small;
  ToProto(SampleEvent(1), &big);
  ExitEvent plain;
  plain.seq = 2;
  plain.known = kFieldRip;
  ToProto(plain, &small);
  // The reused message and event keep no trace of the bigger event.
  proto::ExitEvent reused;
  ToProto(SampleEvent(1), &reused);
  ToProto(plain, &reused);
  ExitEvent out;
  ASSERT_TRUE(FromProto(big, &out).ok());
  ASSERT_TRUE(FromProto(reused, &out).ok());
  ExpectEventEq(out, plain);
  EXPECT_FALSE(reused.outcome().has_pending());
  EXPECT_EQ(reused.outcome().memory_writes_size(), 0);
}

TEST(TraceProtoTest, UnknownKnownBitsArePreserved) {
  ExitEvent e = SampleEvent(1);
  e.known = kFieldAll | (1u << 20);
  proto::ExitEvent p;
  ToProto(e, &p);
  absl::StatusOr<ExitEvent> back = FromProto(p);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->known, e.known);
}

proto::ExitEvent SampleEventProto() {
  proto::ExitEvent p;
  ToProto(SampleEvent(5), &p);
  return p;
}

TEST(TraceProtoTest, EventRejectsMissingExit) {
  proto::ExitEvent p = SampleEventProto();
  p.clear_exit();
  EXPECT_INVALID(FromProto(p).status(), "exit missing");
}

TEST(TraceProtoTest, EventRejectsUnspecifiedVendor) {
  proto::ExitEvent p = SampleEventProto();
  p.mutable_exit()->set_vendor(proto::VENDOR_UNSPECIFIED);
  EXPECT_INVALID(FromProto(p).status(), "exit.vendor is unspecified");
}

TEST(TraceProtoTest, EventRejectsUnknownVendorNumber) {
  proto::ExitEvent p = SampleEventProto();
  p.mutable_exit()->set_vendor(static_cast<proto::Vendor>(3));
  EXPECT_INVALID(FromProto(p).status(), "exit.vendor 3 is not a known vendor");
  p.mutable_exit()->set_vendor(static_cast<proto::Vendor>(-1));
  EXPECT_INVALID(FromProto(p).status(), "exit.vendor -1 is not a known vendor");
}

TEST(TraceProtoTest, EventRejectsInstructionLengthZeroWhenKnown) {
  proto::ExitEvent p = SampleEventProto();
  p.mutable_exit()->set_instruction_length(0);
  EXPECT_INVALID(FromProto(p).status(), "exit.instruction_length 0 is not in 1..15");
}

TEST(TraceProtoTest, EventRejectsInstructionLengthAbove15) {
  proto::ExitEvent p = SampleEventProto();
  p.mutable_exit()->set_instruction_length(16);
  EXPECT_INVALID(FromProto(p).status(), "exit.instruction_length 16 is not in 1..15");
  p.mutable_exit()->set_instruction_length(256 + 2);  // Would truncate to 2 in a uint8_t.
  EXPECT_INVALID(FromProto(p).status(), "exit.instruction_length 258");
}

TEST(TraceProtoTest, EventAcceptsInstructionLengthZeroWhenUnknown) {
  proto::ExitEvent p = SampleEventProto();
  p.set_known(kFieldAll & ~kFieldInstrLength);
  p.mutable_exit()->set_instruction_length(0);
  absl::StatusOr<ExitEvent> e = FromProto(p);
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->exit.instruction_length, 0);
  p.mutable_exit()->set_instruction_length(16);
  EXPECT_INVALID(FromProto(p).status(), "exit.instruction_length 16 is not in 0..15");
}

TEST(TraceProtoTest, EventRejectsUnknownOutcomeKind) {
  proto::ExitEvent p = SampleEventProto();
  p.mutable_outcome()->set_kind(static_cast<proto::RecordedKind>(6));
  EXPECT_INVALID(FromProto(p).status(), "outcome.kind 6 is not a known kind");
}

TEST(TraceProtoTest, EventRouteAndHostFlagRoundTrip) {
  proto::ExitEvent p = SampleEventProto();
  p.mutable_outcome()->set_route(proto::MSR_ROUTE_USERSPACE_FILTER);
  absl::StatusOr<ExitEvent> e = FromProto(p);
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->route, MsrRoute::kUserspaceFilter);
  EXPECT_FALSE(e->host_initiated);
  p.mutable_outcome()->set_route(static_cast<proto::MsrRoute>(6));
  EXPECT_INVALID(FromProto(p).status(), "outcome.route 6 is not a known route");

  p = SampleEventProto();
  p.set_host_initiated(true);
  p.mutable_outcome()->set_kind(proto::RECORDED_KIND_HOST_FAILED);
  e = FromProto(p);
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_TRUE(e->host_initiated);
  proto::ExitEvent back;
  ToProto(*e, &back);
  EXPECT_TRUE(back.host_initiated());
  EXPECT_EQ(back.outcome().kind(), proto::RECORDED_KIND_HOST_FAILED);
  // Host accesses are never routed, and HOST_FAILED only describes host events.
  p.mutable_outcome()->set_route(proto::MSR_ROUTE_USERSPACE_INVAL);
  EXPECT_INVALID(FromProto(p).status(), "on a host_initiated event");
  p.set_host_initiated(false);
  p.mutable_outcome()->set_route(proto::MSR_ROUTE_UNSPECIFIED);
  EXPECT_INVALID(FromProto(p).status(), "HOST_FAILED on an event that is not host_initiated");
}

TEST(TraceProtoTest, HeaderRoutingRoundTripsAndIsValidatedAsKvmDoes) {
  TraceHeader h = SampleHeader();
  h.routing.user_space_msr_mask = kMsrExitReasonFilter | kMsrExitReasonInval;
  ASSERT_TRUE(DenyListFilter({0x277, 0x10}, &h.routing.filter).ok());
  h.routing.userspace_handler_set = "reference+fifo";
  proto::TraceHeader p;
  ToProto(h, &p);
  absl::StatusOr<TraceHeader> back = FromProto(p);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->routing, h.routing);

  p.set_user_space_msr_reasons(8);  // KVM_CAP_X86_USER_SPACE_MSR rejects other bits.
  EXPECT_INVALID(FromProto(p).status(), "user_space_msr_reasons 0x8");
  ToProto(h, &p);
  p.mutable_msr_filter()->mutable_ranges(0)->set_flags(0);  // kvm_add_msr_filter: EINVAL.
  EXPECT_INVALID(FromProto(p).status(), "range 0 has flags 0");
  ToProto(h, &p);
  p.mutable_msr_filter()->clear_ranges();  // DEFAULT_DENY without ranges: EINVAL.
  p.mutable_msr_filter()->set_default_deny(true);
  EXPECT_INVALID(FromProto(p).status(), "default deny with no non-empty range");
}

TEST(TraceProtoTest, EventWithoutOutcomeIsUnspecified) {
  proto::ExitEvent p = SampleEventProto();
  p.clear_outcome();
  p.set_known(kFieldRip);
  absl::StatusOr<ExitEvent> e = FromProto(p);
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->kind, RecordedKind::kUnspecified);
  EXPECT_FALSE(e->pending_out.valid);
  EXPECT_TRUE(e->memory_writes.empty());
}

TEST(TraceProtoTest, EventRejectsPendingVectorAbove31) {
  proto::ExitEvent p = SampleEventProto();
  p.mutable_outcome()->mutable_pending()->set_vector(300);
  EXPECT_INVALID(FromProto(p).status(), "outcome.pending.vector 300 is not an exception vector");
}

TEST(TraceProtoTest, EventRejectsMemoryWritesWithoutTheirKnownBit) {
  proto::ExitEvent p = SampleEventProto();
  p.set_known(kFieldAll & ~kFieldMemoryWrites);
  EXPECT_INVALID(FromProto(p).status(),
                 "outcome.memory_writes has 2 writes but known lacks FIELD_MEMORY_WRITES");
}

TEST(TraceProtoTest, EventRejectsEmptyMemoryWrite) {
  proto::ExitEvent p = SampleEventProto();
  p.mutable_outcome()->mutable_memory_writes(1)->clear_bytes();
  EXPECT_INVALID(FromProto(p).status(), "outcome.memory_writes[1] is empty");
}

TEST(TraceProtoTest, EventRejectsMemoryWriteThatWrapsAround) {
  proto::ExitEvent p = SampleEventProto();
  p.mutable_outcome()->mutable_memory_writes(0)->set_gpa(~0ull - 3);
  EXPECT_INVALID(FromProto(p).status(),
                 "outcome.memory_writes[0]: gpa 0xfffffffffffffffc + 8 "
                 "bytes wraps around");
}

TEST(TraceProtoTest, ValidateEventAppliesTheSameRulesToPlainEvents) {
  ExitEvent e = SampleEvent(1);
  EXPECT_TRUE(ValidateEvent(e).ok());
  e.exit.instruction_length = 0;
  EXPECT_INVALID(ValidateEvent(e), "exit.instruction_length 0 is not in 1..15");
  e = SampleEvent(1);
  e.exit.vendor = Vendor::kUnspecified;
  EXPECT_INVALID(ValidateEvent(e), "exit.vendor is unspecified");
  e = SampleEvent(1);
  e.kind = static_cast<RecordedKind>(9);
  EXPECT_INVALID(ValidateEvent(e), "outcome.kind 9");
}

// --- Trailer ---

TEST(TraceProtoTest, TrailerRoundTrips) {
  proto::Trailer p;
  ToProto(TraceTrailer{12345, 0xfedcba9876543210ull}, &p);
  absl::StatusOr<TraceTrailer> t = FromProto(p);
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->event_count, 12345u);
  EXPECT_EQ(t->final_state_digest, 0xfedcba9876543210ull);
}

}  // namespace
}  // namespace msrtrace
