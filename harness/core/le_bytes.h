// Little-endian loads and stores for the guest-memory structures handlers write and read
// (pvclock_vcpu_time_info, pvclock_wall_clock, the Hyper-V reference TSC page): x86 lays them
// out little-endian whatever the host, so handlers build their bytes with these.
#ifndef MSRTRACE_HARNESS_CORE_LE_BYTES_H_
#define MSRTRACE_HARNESS_CORE_LE_BYTES_H_

#include <cstdint>

namespace msrtrace {

inline void PutLe32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
inline void PutLe64(uint8_t* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
inline uint32_t GetLe32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | static_cast<uint32_t>(p[1]) << 8 |
         static_cast<uint32_t>(p[2]) << 16 | static_cast<uint32_t>(p[3]) << 24;
}
inline uint64_t GetLe64(const uint8_t* p) {
  return static_cast<uint64_t>(GetLe32(p)) | static_cast<uint64_t>(GetLe32(p + 4)) << 32;
}

}  // namespace msrtrace

#endif  // MSRTRACE_HARNESS_CORE_LE_BYTES_H_
