// kvm_recorder: a tiny VMM under /dev/kvm whose guest MSR accesses go to msrtrace handlers.
//
// One vCPU in real mode runs a few bytes of guest code: RDMSR/WRMSR of IA32_PAT and
// IA32_SYSENTER_CS, an RDMSR of an index nobody implements, and a WRMSR of an invalid PAT value,
// then HLT. The VM enables KVM_CAP_X86_USER_SPACE_MSR (exit reasons FILTER | UNKNOWN) and a
// KVM_X86_SET_MSR_FILTER that denies the MSRs the guest touches, so every access exits to
// userspace, where KvmMsrAdapter dispatches it to the reference handler set through a Recorder.
// A #GP the handlers return becomes run->msr.error = 1; KVM injects it and the guest's #GP
// handler (IVT vector 13) skips the 2-byte instruction.
//
// Usage: kvm_recorder OUT.trace
// Exit status: 0 recorded and checked, 1 failure, 77 skipped (no usable /dev/kvm or the kernel
// lacks the capabilities; the reason is printed).
#include <cpuid.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "handlers/cpu_profile.h"
#include "handlers/handler_set.h"
#include "harness/core/controller.h"
#include "harness/core/guest_memory.h"
#include "harness/core/status_macros.h"
#include "harness/kvm/kvm_adapter.h"
#include "harness/replay/recorder.h"
#include "harness/trace/trace_types.h"

namespace {

constexpr int kSkip = 77;
constexpr uint64_t kMemSize = 0x10000;
constexpr uint64_t kCodeGpa = 0x1000;
constexpr uint64_t kGpHandlerGpa = 0x2000;

// Real-mode guest code at 0x1000.
constexpr uint8_t kGuestCode[] = {
    0x66, 0xb9, 0x77, 0x02, 0x00, 0x00,  // mov ecx, 0x277 (IA32_PAT)
    0x0f, 0x32,                          // rdmsr
    0x66, 0xb8, 0x06, 0x04, 0x07, 0x00,  // mov eax, 0x00070406
    0x66, 0xba, 0x06, 0x04, 0x07, 0x01,  // mov edx, 0x01070406 (UC- in PAT5: still valid)
    0x0f, 0x30,                          // wrmsr
    0x0f, 0x32,                          // rdmsr
    0x66, 0xb9, 0x74, 0x01, 0x00, 0x00,  // mov ecx, 0x174 (IA32_SYSENTER_CS)
    0x66, 0xb8, 0x10, 0x00, 0x00, 0x00,  // mov eax, 0x10
    0x66, 0x31, 0xd2,                    // xor edx, edx
    0x0f, 0x30,                          // wrmsr
    0x0f, 0x32,                          // rdmsr
    0x66, 0xb9, 0x78, 0x56, 0x34, 0x12,  // mov ecx, 0x12345678 (unknown)
    0x0f, 0x32,                          // rdmsr -> #GP, skipped by the handler
    0x66, 0xb9, 0x77, 0x02, 0x00, 0x00,  // mov ecx, 0x277
    0x66, 0xb8, 0x02, 0x00, 0x00, 0x00,  // mov eax, 2 (PAT type 2 is reserved)
    0x66, 0x31, 0xd2,                    // xor edx, edx
    0x0f, 0x30,                          // wrmsr -> #GP, skipped by the handler
    0xf4,                                // hlt
};

// #GP handler at 0x2000 (real mode pushes FLAGS, CS, IP; no error code): IP += 2, IRET.
constexpr uint8_t kGpHandler[] = {
    0x55,                    // push bp
    0x89, 0xe5,              // mov bp, sp
    0x83, 0x46, 0x02, 0x02,  // add word [bp+2], 2
    0x5d,                    // pop bp
    0xcf,                    // iret
};

// What the run must produce (checked after HLT).
constexpr int kExpectedExits = 7;
constexpr int kExpectedFaults = 2;
constexpr uint64_t kPatWritten = 0x0107040600070406ull;

class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  void reset(int fd) {
    if (fd_ >= 0) close(fd_);
    fd_ = fd;
  }

 private:
  int fd_;
};

bool HostIsAmd() {
  unsigned a, b, c, d;
  if (!__get_cpuid(0, &a, &b, &c, &d)) return false;
  char v[13];
  memcpy(v, &b, 4);
  memcpy(v + 4, &d, 4);
  memcpy(v + 8, &c, 4);
  v[12] = 0;
  return strcmp(v, "AuthenticAMD") == 0 || strcmp(v, "HygonGenuine") == 0;
}

int Run(const std::string& out_path) {
  // --- /dev/kvm and capabilities (skip, with the reason, when unusable) ---
  Fd kvm(open("/dev/kvm", O_RDWR | O_CLOEXEC));
  if (kvm.get() < 0) {
    printf("SKIP: cannot open /dev/kvm: %s\n", strerror(errno));
    return kSkip;
  }
  if (ioctl(kvm.get(), KVM_GET_API_VERSION, 0) != KVM_API_VERSION) {
    printf("SKIP: unexpected KVM API version\n");
    return kSkip;
  }
  const int user_msr = ioctl(kvm.get(), KVM_CHECK_EXTENSION, KVM_CAP_X86_USER_SPACE_MSR);
  const int msr_filter = ioctl(kvm.get(), KVM_CHECK_EXTENSION, KVM_CAP_X86_MSR_FILTER);
  if (user_msr <= 0 || msr_filter <= 0) {
    printf("SKIP: kernel lacks KVM_CAP_X86_USER_SPACE_MSR or KVM_CAP_X86_MSR_FILTER\n");
    return kSkip;
  }
  Fd vm(ioctl(kvm.get(), KVM_CREATE_VM, 0));
  if (vm.get() < 0) {
    printf("SKIP: KVM_CREATE_VM failed: %s\n", strerror(errno));
    return kSkip;
  }

  // --- Guest memory: 64 KiB at GPA 0 with the code, the #GP handler and the IVT entry ---
  void* mem = mmap(nullptr, kMemSize, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) {
    fprintf(stderr, "kvm_recorder: mmap: %s\n", strerror(errno));
    return 1;
  }
  uint8_t* guest = static_cast<uint8_t*>(mem);
  memcpy(guest + kCodeGpa, kGuestCode, sizeof(kGuestCode));
  memcpy(guest + kGpHandlerGpa, kGpHandler, sizeof(kGpHandler));
  const uint16_t ivt13[2] = {static_cast<uint16_t>(kGpHandlerGpa), 0};  // offset, segment
  memcpy(guest + 13 * 4, ivt13, sizeof(ivt13));
  struct kvm_userspace_memory_region region = {};
  region.slot = 0;
  region.guest_phys_addr = 0;
  region.memory_size = kMemSize;
  region.userspace_addr = reinterpret_cast<uint64_t>(mem);
  if (ioctl(vm.get(), KVM_SET_USER_MEMORY_REGION, &region) < 0) {
    fprintf(stderr, "kvm_recorder: KVM_SET_USER_MEMORY_REGION: %s\n", strerror(errno));
    return 1;
  }

  // --- msrtrace: controller with the reference handlers, recorder, adapter ---
  const msrtrace::CpuProfile* profile = nullptr;
  for (const msrtrace::CpuProfile& p : msrtrace::BuiltinProfiles()) {
    if ((p.vendor == msrtrace::Vendor::kAmdSvm) == HostIsAmd()) {
      profile = &p;
      break;
    }
  }
  if (profile == nullptr) profile = &msrtrace::DefaultProfile();
  const msrtrace::HandlerSetDef* set = msrtrace::FindHandlerSet("reference");
  if (set == nullptr) {
    fprintf(stderr, "kvm_recorder: no 'reference' handler set\n");
    return 1;
  }
  msrtrace::Controller controller;  // Unknown MSRs: inject #GP, as KVM.
  if (absl::Status st = set->install(controller, *profile); !st.ok()) {
    fprintf(stderr, "kvm_recorder: %s\n", static_cast<std::string>(st.message()).c_str());
    return 1;
  }
  std::vector<msrtrace::Vcpu> vcpus;
  vcpus.push_back(controller.CreateVcpu(0));
  msrtrace::SparseMemory shadow(kMemSize);  // These MSRs never touch guest memory.

  msrtrace::TraceHeader header;
  header.producer = "kvm_recorder (msrtrace example)";
  header.cpu_profile = profile->name;
  header.handler_set = set->name;
  absl::StatusOr<std::unique_ptr<msrtrace::Recorder>> rec =
      msrtrace::Recorder::Start(out_path, header, controller, vcpus, shadow);
  if (!rec.ok()) {
    fprintf(stderr, "kvm_recorder: %s\n", static_cast<std::string>(rec.status().message()).c_str());
    return 1;
  }
  msrtrace::KvmAdapterOptions aopt;
  aopt.vendor = profile->vendor;
  msrtrace::KvmMsrAdapter adapter(controller, shadow, aopt);
  adapter.set_handle_hook([&](const msrtrace::Exit& e, msrtrace::Vcpu& v,
                              msrtrace::GuestMemory& m) { return (*rec)->Handle(e, v, m); });

  // Exits to userspace for MSRs KVM does not know and for the ones the filter denies.
  struct kvm_enable_cap cap = {};
  cap.cap = KVM_CAP_X86_USER_SPACE_MSR;
  cap.args[0] = KVM_MSR_EXIT_REASON_FILTER | KVM_MSR_EXIT_REASON_UNKNOWN;
  if (ioctl(vm.get(), KVM_ENABLE_CAP, &cap) < 0) {
    printf("SKIP: KVM_ENABLE_CAP(KVM_CAP_X86_USER_SPACE_MSR): %s\n", strerror(errno));
    return kSkip;
  }
  std::vector<uint32_t> touched = {0x277, 0x174};
  std::vector<uint32_t> deny;
  for (uint32_t i : touched) {
    if (controller.Find(i) != nullptr) deny.push_back(i);
  }
  absl::StatusOr<std::unique_ptr<msrtrace::KvmMsrFilter>> filter = msrtrace::BuildMsrFilter(deny);
  if (!filter.ok()) {
    fprintf(stderr, "kvm_recorder: %s\n",
            static_cast<std::string>(filter.status().message()).c_str());
    return 1;
  }
  if (ioctl(vm.get(), KVM_X86_SET_MSR_FILTER, &(*filter)->filter) < 0) {
    printf("SKIP: KVM_X86_SET_MSR_FILTER: %s\n", strerror(errno));
    return kSkip;
  }

  // --- The vCPU: real mode at 0000:1000 ---
  Fd vcpu_fd(ioctl(vm.get(), KVM_CREATE_VCPU, 0));
  if (vcpu_fd.get() < 0) {
    return (fprintf(stderr, "kvm_recorder: KVM_CREATE_VCPU: %s\n", strerror(errno)), 1);
  }
  const int run_size = ioctl(kvm.get(), KVM_GET_VCPU_MMAP_SIZE, 0);
  if (run_size < static_cast<int>(sizeof(struct kvm_run))) {
    return (fprintf(stderr, "kvm_recorder: KVM_GET_VCPU_MMAP_SIZE: %s\n", strerror(errno)), 1);
  }
  void* run_map = mmap(nullptr, run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu_fd.get(), 0);
  if (run_map == MAP_FAILED) return (fprintf(stderr, "kvm_recorder: mmap kvm_run\n"), 1);
  struct kvm_run* run = static_cast<struct kvm_run*>(run_map);
  struct kvm_sregs sregs;
  if (ioctl(vcpu_fd.get(), KVM_GET_SREGS, &sregs) < 0) return 1;
  for (struct kvm_segment* s : {&sregs.cs, &sregs.ds, &sregs.es, &sregs.ss}) {
    s->base = 0;
    s->selector = 0;
  }
  if (ioctl(vcpu_fd.get(), KVM_SET_SREGS, &sregs) < 0) return 1;
  struct kvm_regs regs = {};
  regs.rip = kCodeGpa;
  regs.rsp = 0x8000;
  regs.rflags = 0x2;
  if (ioctl(vcpu_fd.get(), KVM_SET_REGS, &regs) < 0) return 1;
  msrtrace::Vcpu& shadow_vcpu = vcpus[0];
  shadow_vcpu.regs.rip = kCodeGpa;

  // --- The exit loop ---
  int exits = 0, faults = 0;
  uint64_t pat_read_back = 0;
  for (int iter = 0; iter < 1000; ++iter) {
    if (ioctl(vcpu_fd.get(), KVM_RUN, 0) < 0) {
      if (errno == EINTR) continue;
      fprintf(stderr, "kvm_recorder: KVM_RUN: %s\n", strerror(errno));
      return 1;
    }
    if (run->exit_reason == KVM_EXIT_HLT) break;
    if (!msrtrace::KvmMsrAdapter::IsMsrExit(*run)) {
      fprintf(stderr, "kvm_recorder: unexpected exit reason %u\n", run->exit_reason);
      return 1;
    }
    // Sync what the recording reports: the RIP and RFLAGS of the exiting instruction.
    struct kvm_regs now;
    if (ioctl(vcpu_fd.get(), KVM_GET_REGS, &now) < 0) return 1;
    shadow_vcpu.regs.rip = now.rip;
    shadow_vcpu.regs.rflags = now.rflags;
    absl::StatusOr<msrtrace::Outcome> out = adapter.HandleExit(run, shadow_vcpu);
    if (!out.ok()) {
      fprintf(stderr, "kvm_recorder: %s\n",
              static_cast<std::string>(out.status().message()).c_str());
      return 1;
    }
    ++exits;
    if (out->kind == msrtrace::Outcome::Kind::kGpInjected) ++faults;
    if (run->exit_reason == KVM_EXIT_X86_RDMSR && run->msr.index == 0x277 && exits == 3) {
      pat_read_back = run->msr.data;
    }
    printf("exit %d: %s 0x%x (reason %s) -> %s value 0x%llx\n", exits,
           run->exit_reason == KVM_EXIT_X86_RDMSR ? "rdmsr" : "wrmsr", run->msr.index,
           run->msr.reason == KVM_MSR_EXIT_REASON_FILTER ? "filter" : "unknown",
           msrtrace::OutcomeKindName(out->kind), static_cast<unsigned long long>(out->value));
  }
  if (run->exit_reason != KVM_EXIT_HLT) {
    fprintf(stderr, "kvm_recorder: the guest did not reach HLT\n");
    return 1;
  }
  if (absl::Status st = (*rec)->Close(vcpus); !st.ok()) {
    fprintf(stderr, "kvm_recorder: %s\n", static_cast<std::string>(st.message()).c_str());
    return 1;
  }
  printf("recorded %d exits (%d #GP) to %s\n", exits, faults, out_path.c_str());
  if (exits != kExpectedExits || faults != kExpectedFaults) {
    fprintf(stderr, "kvm_recorder: expected %d exits with %d #GP\n", kExpectedExits,
            kExpectedFaults);
    return 1;
  }
  if (pat_read_back != kPatWritten) {
    fprintf(stderr, "kvm_recorder: PAT read back 0x%llx, wrote 0x%llx\n",
            static_cast<unsigned long long>(pat_read_back),
            static_cast<unsigned long long>(kPatWritten));
    return 1;
  }
  munmap(run_map, run_size);
  munmap(mem, kMemSize);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: kvm_recorder OUT.trace\n");
    return 1;
  }
  return Run(argv[1]);
}
