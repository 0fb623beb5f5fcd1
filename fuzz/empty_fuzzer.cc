// The baseline for exec/s figures (bench_fuzzers.sh): a target that does nothing, built with
// the same flags as the real ones.
#include <cstddef>
#include <cstdint>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* /*data*/, size_t /*size*/) { return 0; }
