/* A C VMM's use of msrtrace through the C API, end to end:
 *   1. drive the "c-device" set (the reference set plus a C doorbell device) through a recorder,
 *      as a VMM's exit loop would, and write OUT_DIR/c-device.trace;
 *   2. replay that trace (twice, and from a mid-trace snapshot): it must be clean;
 *   3. replay every golden trace of the reference set through "c-device": clean;
 *   4. fuzz "c-device" briefly in process (mutants of the golden traces and the recording,
 *      every oracle active): no finding.
 *
 *   c_device_demo OUT_DIR GOLDEN_DIR [RUNS]     (OUT_DIR is created if missing)
 * Exit status 0 when all of that holds, 1 otherwise (the reason on stderr). */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "c_device.h"
#include "msrtrace/msrtrace.h"

static char err[1024];

/* One guest access through the recorder; returns the outcome kind or 0 on error. */
static uint32_t Access(msrtrace_recorder* rec, msrtrace_regs* regs, int is_write, uint32_t index,
                       uint64_t value, uint64_t tsc) {
  msrtrace_exit exit;
  msrtrace_outcome out;
  msrtrace_exit_init(&exit, is_write);
  exit.host_tsc = tsc;
  regs->gpr[1] = index;
  if (is_write) {
    regs->gpr[0] = value & 0xffffffffu;
    regs->gpr[2] = value >> 32;
  }
  regs->pending_valid = 0; /* Delivered at the last VM entry. */
  if (msrtrace_recorder_handle(rec, 0, &exit, regs, &out, err, sizeof err) != MSRTRACE_OK) {
    fprintf(stderr, "c_device_demo: exit on %#x failed: %s\n", (unsigned)index, err);
    return 0;
  }
  return out.kind;
}

static int Record(const char* path) {
  msrtrace_controller* c;
  msrtrace_recorder* rec;
  msrtrace_regs regs;
  int ok = 1;
  c = msrtrace_controller_create_registered(C_DEVICE_SET, NULL, MSRTRACE_POLICY_INJECT_GP, 1, err,
                                            sizeof err);
  if (c == NULL) {
    fprintf(stderr, "c_device_demo: %s\n", err);
    return 0;
  }
  rec = msrtrace_recorder_start(c, path, "c_device_demo", err, sizeof err);
  if (rec == NULL) {
    fprintf(stderr, "c_device_demo: %s\n", err);
    msrtrace_controller_destroy(c);
    return 0;
  }
  msrtrace_controller_get_regs(c, 0, &regs);
  regs.rip = 0x401000;
  regs.cr0 = 0x80000011u;
  regs.cr4 = 0x20;
  regs.efer = 0x500;
  regs.cs_l = 1;
  /* Doorbell while disabled: #GP. Enable, ring twice, read the count, bad CTRL value: #GP.
   * Then the reference set: IA32_PAT write and read pass through. */
  ok &= Access(rec, &regs, 1, C_DEVICE_DOORBELL, 1, 1000) == MSRTRACE_OUTCOME_GP_INJECTED;
  ok &= Access(rec, &regs, 1, C_DEVICE_CTRL, 1, 2000) == MSRTRACE_OUTCOME_RETIRED;
  ok &= Access(rec, &regs, 1, C_DEVICE_DOORBELL, 1, 3000) == MSRTRACE_OUTCOME_RETIRED;
  ok &= Access(rec, &regs, 1, C_DEVICE_DOORBELL, 1, 4000) == MSRTRACE_OUTCOME_RETIRED;
  ok &= Access(rec, &regs, 0, C_DEVICE_DOORBELL, 0, 5000) == MSRTRACE_OUTCOME_RETIRED;
  ok &= regs.gpr[0] == 2 && regs.gpr[2] == 0;
  ok &= Access(rec, &regs, 1, C_DEVICE_CTRL, 0x10, 6000) == MSRTRACE_OUTCOME_GP_INJECTED;
  ok &= Access(rec, &regs, 1, 0x277, 0x0007040600070406ull, 7000) == MSRTRACE_OUTCOME_RETIRED;
  ok &= Access(rec, &regs, 0, 0x277, 0, 8000) == MSRTRACE_OUTCOME_RETIRED;
  if (!ok) fprintf(stderr, "c_device_demo: an access had the wrong outcome\n");
  if (msrtrace_recorder_close(rec, err, sizeof err) != MSRTRACE_OK) {
    fprintf(stderr, "c_device_demo: %s\n", err);
    ok = 0;
  }
  msrtrace_recorder_destroy(rec);
  msrtrace_controller_destroy(c);
  return ok;
}

static int Replay(const char* path, const char* set) {
  msrtrace_replay_result r;
  int rc = msrtrace_replay_file(path, set, 2, 1, &r, err, sizeof err);
  printf("replay %s%s%s: %s, %llu events\n", path, set ? " on " : "", set ? set : "",
         msrtrace_status_name(rc), (unsigned long long)r.events);
  if (rc != MSRTRACE_OK) fprintf(stderr, "c_device_demo: %s\n", err);
  return rc == MSRTRACE_OK;
}

static int EndsWith(const char* s, const char* suffix) {
  size_t n = strlen(s), m = strlen(suffix);
  return n >= m && strcmp(s + n - m, suffix) == 0;
}

static int ReplayGolden(const char* dir) {
  DIR* d = opendir(dir);
  struct dirent* e;
  char path[4096];
  int ok = 1, count = 0;
  if (d == NULL) {
    fprintf(stderr, "c_device_demo: cannot open %s\n", dir);
    return 0;
  }
  while ((e = readdir(d)) != NULL) {
    if (!EndsWith(e->d_name, ".trace") && !EndsWith(e->d_name, ".trace.gz")) continue;
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    ok &= Replay(path, C_DEVICE_SET);
    ++count;
  }
  closedir(d);
  if (count == 0) fprintf(stderr, "c_device_demo: no traces in %s\n", dir);
  return ok && count > 0;
}

int main(int argc, char** argv) {
  char trace[4096];
  const char* seeds[2];
  msrtrace_fuzzer* f;
  msrtrace_fuzz_stats stats;
  unsigned long long runs = argc > 3 ? strtoull(argv[3], NULL, 10) : 500;
  int rc;
  if (argc < 3) {
    fprintf(stderr, "usage: c_device_demo OUT_DIR GOLDEN_DIR [RUNS]\n");
    return 2;
  }
  if (c_device_register(err, sizeof err) != MSRTRACE_OK) {
    fprintf(stderr, "c_device_demo: %s\n", err);
    return 1;
  }
  if (mkdir(argv[1], 0777) != 0 && errno != EEXIST) {
    fprintf(stderr, "c_device_demo: cannot create %s\n", argv[1]);
    return 1;
  }
  snprintf(trace, sizeof trace, "%s/c-device.trace", argv[1]);
  if (!Record(trace) || !Replay(trace, NULL) || !ReplayGolden(argv[2])) return 1;

  f = msrtrace_fuzzer_create(C_DEVICE_SET, err, sizeof err);
  if (f == NULL) {
    fprintf(stderr, "c_device_demo: %s\n", err);
    return 1;
  }
  seeds[0] = argv[1];
  seeds[1] = argv[2];
  rc = msrtrace_fuzzer_run(f, seeds, 2, runs, 1, &stats, err, sizeof err);
  msrtrace_fuzzer_destroy(f);
  printf("fuzz %s: %s, %llu seeds, %llu runs\n", C_DEVICE_SET, msrtrace_status_name(rc),
         (unsigned long long)stats.seeds, (unsigned long long)stats.runs);
  if (rc != MSRTRACE_OK) {
    fprintf(stderr, "%s\n", err);
    return 1;
  }
  return 0;
}
