#include "harness/core/guest_memory.h"

#include <cstring>

#include "gtest/gtest.h"

namespace msrtrace {
namespace {

TEST(SparseMemoryTest, UnwrittenMemoryReadsZero) {
  SparseMemory m;
  uint64_t v = 1;
  ASSERT_TRUE(m.Read(0x5000, &v, sizeof(v)));
  EXPECT_EQ(v, 0u);
  EXPECT_TRUE(m.PageAddresses().empty());
}

TEST(SparseMemoryTest, WriteThenReadAcrossPageBoundary) {
  SparseMemory m;
  const char msg[] = "across-the-boundary";
  ASSERT_TRUE(m.Write(kPageSize - 5, msg, sizeof(msg)));
  char back[sizeof(msg)] = {};
  ASSERT_TRUE(m.Read(kPageSize - 5, back, sizeof(back)));
  EXPECT_STREQ(back, msg);
  EXPECT_EQ(m.PageAddresses(), (std::vector<uint64_t>{0, kPageSize}));
}

TEST(SparseMemoryTest, AccessBeyondSizeFailsWithoutSideEffects) {
  SparseMemory m(2 * kPageSize);
  uint32_t v = 7;
  EXPECT_FALSE(m.Write(2 * kPageSize - 2, &v, sizeof(v)));
  EXPECT_TRUE(m.PageAddresses().empty());
  EXPECT_FALSE(m.Read(~0ull - 1, &v, sizeof(v)));  // No wrap-around.
  EXPECT_FALSE(m.Write(~0ull, &v, 1));
}

TEST(SparseMemoryTest, CopyIsDeep) {
  SparseMemory a;
  uint8_t one = 1;
  ASSERT_TRUE(a.Write(10, &one, 1));
  SparseMemory b = a;
  uint8_t two = 2;
  ASSERT_TRUE(b.Write(10, &two, 1));
  uint8_t got = 0;
  ASSERT_TRUE(a.Read(10, &got, 1));
  EXPECT_EQ(got, 1);
}

TEST(WriteLogTest, RecordsWritesInOrderAndDigestsThem) {
  WriteLog log;
  EXPECT_EQ(log.Digest(), 0u);
  const uint32_t a = 0x11223344, b = 0x55;
  log.Append(0x1000, &a, 4);
  log.Append(0x2000, &b, 1);
  ASSERT_EQ(log.writes().size(), 2u);
  EXPECT_EQ(log.writes()[1].gpa, 0x2000u);
  EXPECT_EQ(log.BytesOf(log.writes()[0])[0], 0x44);
  const uint64_t d = log.Digest();
  WriteLog other;
  other.Append(0x2000, &b, 1);
  other.Append(0x1000, &a, 4);
  EXPECT_NE(other.Digest(), d);  // Order matters.
  log.Clear();
  EXPECT_TRUE(log.empty());
}

}  // namespace
}  // namespace msrtrace
