#include "harness/core/utf8.h"

#include "gtest/gtest.h"

namespace msrtrace {
namespace {

TEST(ValidUtf8Test, CopiesValidUtf8Unchanged) {
  EXPECT_EQ(ValidUtf8(""), "");
  EXPECT_EQ(ValidUtf8("caf\xc3\xa9"), "caf\xc3\xa9");
  EXPECT_EQ(ValidUtf8("ok\xe2\x82\xac"), "ok\xe2\x82\xac");
  EXPECT_EQ(ValidUtf8("\xf0\x9f\x98\x80"), "\xf0\x9f\x98\x80");  // U+1F600 stays.
  EXPECT_EQ(ValidUtf8(absl::string_view("a\0b", 3)), std::string("a\0b", 3));
}

// A file name that is not UTF-8 made the JSON output invalid: every byte outside a valid
// sequence becomes U+FFFD.
TEST(ValidUtf8Test, InvalidBytesBecomeReplacementCharacters) {
  const std::string fffd = "\xef\xbf\xbd";
  EXPECT_EQ(ValidUtf8("a\xff"
                      "b"),
            "a" + fffd + "b");
  EXPECT_EQ(ValidUtf8("\xc3"), fffd);                                   // Cut sequence.
  EXPECT_EQ(ValidUtf8("\xc0\xaf"), fffd + fffd);                        // Overlong.
  EXPECT_EQ(ValidUtf8("\xed\xa0\x80"), fffd + fffd + fffd);             // Surrogate.
  EXPECT_EQ(ValidUtf8("\xf4\x90\x80\x80"), fffd + fffd + fffd + fffd);  // > U+10FFFF.
}

}  // namespace
}  // namespace msrtrace
