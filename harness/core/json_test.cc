#include "harness/core/json.h"

#include "gtest/gtest.h"

namespace msrtrace {
namespace {

TEST(JsonStringTest, QuotesAndEscapesQuoteBackslashAndControlCharacters) {
  EXPECT_EQ(JsonString(""), "\"\"");
  EXPECT_EQ(JsonString("IA32_PAT"), "\"IA32_PAT\"");
  EXPECT_EQ(JsonString("a\"b\\c"), "\"a\\\"b\\\\c\"");
  EXPECT_EQ(JsonString("l1\nl2\tx\r"), "\"l1\\nl2\\tx\\r\"");
  EXPECT_EQ(JsonString(absl::string_view("\x01\x1f", 2)), "\"\\u0001\\u001f\"");
  EXPECT_EQ(JsonString(absl::string_view("\0", 1)), "\"\\u0000\"");
}

TEST(JsonStringTest, CopiesUtf8BytesUnchanged) {
  EXPECT_EQ(JsonString("caf\xc3\xa9"), "\"caf\xc3\xa9\"");
}

// Issue 9 item 10: a file name that is not UTF-8 made the JSON output invalid.
TEST(JsonStringTest, InvalidUtf8BytesBecomeReplacementCharacters) {
  const std::string fffd = "\xef\xbf\xbd";
  EXPECT_EQ(JsonString("a\xff"
                       "b"),
            "\"a" + fffd + "b\"");
  EXPECT_EQ(JsonString("\xc3"), "\"" + fffd + "\"");                        // Cut sequence.
  EXPECT_EQ(JsonString("\xc0\xaf"), "\"" + fffd + fffd + "\"");             // Overlong.
  EXPECT_EQ(JsonString("\xed\xa0\x80"), "\"" + fffd + fffd + fffd + "\"");  // Surrogate.
  EXPECT_EQ(JsonString("\xf4\x90\x80\x80"),
            "\"" + fffd + fffd + fffd + fffd + "\"");                 // > U+10FFFF.
  EXPECT_EQ(JsonString("\xf0\x9f\x98\x80"), "\"\xf0\x9f\x98\x80\"");  // U+1F600 stays.
  EXPECT_EQ(ValidUtf8("ok\xe2\x82\xac"), "ok\xe2\x82\xac");
}

}  // namespace
}  // namespace msrtrace
