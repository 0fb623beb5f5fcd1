#include "tools/flags.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace msrtrace::cli {
namespace {

using ::testing::HasSubstr;

struct Parsed {
  std::string s = "def";
  uint64_t n = 5;
  bool b = false;
  std::vector<std::string> pos;
};

FlagParser Make(Parsed* p, size_t min = 0, size_t max = SIZE_MAX) {
  FlagParser f("msrtrace test", "ARGS", "A test command.");
  f.String("str", &p->s, "a string", 'o');
  f.Uint("num", &p->n, "a number");
  f.Bool("flag", &p->b, "a bool");
  f.Positional("ARGS", &p->pos, "things", min, max);
  return f;
}

TEST(FlagsTest, ParsesEqualsAndSeparateValues) {
  Parsed p;
  FlagParser f = Make(&p);
  ASSERT_TRUE(f.Parse({"--str=x", "--num", "12", "a", "--flag", "b"}).ok());
  EXPECT_EQ(p.s, "x");
  EXPECT_EQ(p.n, 12u);
  EXPECT_TRUE(p.b);
  EXPECT_THAT(p.pos, ::testing::ElementsAre("a", "b"));
}

TEST(FlagsTest, ShortNameAndHexNumbers) {
  Parsed p;
  FlagParser f = Make(&p);
  ASSERT_TRUE(f.Parse({"-o", "out", "--num=0x1f"}).ok());
  EXPECT_EQ(p.s, "out");
  EXPECT_EQ(p.n, 31u);
}

TEST(FlagsTest, DefaultsStayWhenNotGiven) {
  Parsed p;
  FlagParser f = Make(&p);
  ASSERT_TRUE(f.Parse({}).ok());
  EXPECT_EQ(p.s, "def");
  EXPECT_EQ(p.n, 5u);
}

TEST(FlagsTest, UnknownFlagIsOneLineError) {
  Parsed p;
  FlagParser f = Make(&p);
  absl::Status st = f.Parse({"--nope"});
  EXPECT_FALSE(st.ok());
  EXPECT_THAT(std::string(st.message()), HasSubstr("unknown flag '--nope'"));
  EXPECT_EQ(std::string(st.message()).find('\n'), std::string::npos);
}

TEST(FlagsTest, BadNumberNamesTheFlag) {
  Parsed p;
  FlagParser f = Make(&p);
  absl::Status st = f.Parse({"--num=-3"});
  EXPECT_THAT(std::string(st.message()), HasSubstr("--num"));
  st = Make(&p).Parse({"--num=12abc"});
  EXPECT_FALSE(st.ok());
}

TEST(FlagsTest, MissingValueIsAnError) {
  Parsed p;
  EXPECT_FALSE(Make(&p).Parse({"--str"}).ok());
}

TEST(FlagsTest, PositionalCountIsChecked) {
  Parsed p;
  EXPECT_FALSE(Make(&p, 1).Parse({}).ok());
  Parsed q;
  EXPECT_FALSE(Make(&q, 0, 1).Parse({"a", "b"}).ok());
}

TEST(FlagsTest, DoubleDashEndsFlags) {
  Parsed p;
  ASSERT_TRUE(Make(&p).Parse({"--", "--flag"}).ok());
  EXPECT_FALSE(p.b);
  EXPECT_THAT(p.pos, ::testing::ElementsAre("--flag"));
}

TEST(FlagsTest, HelpListsEveryFlag) {
  Parsed p;
  FlagParser f = Make(&p);
  ASSERT_TRUE(f.Parse({"--help"}).ok());
  EXPECT_TRUE(f.help_requested());
  const std::string h = f.Help();
  for (const char* s : {"--str", "-o", "--num", "--flag", "ARGS", "--help", "default"}) {
    EXPECT_THAT(h, HasSubstr(s));
  }
}

TEST(FlagsTest, BoolAcceptsExplicitValues) {
  Parsed p;
  ASSERT_TRUE(Make(&p).Parse({"--flag=true"}).ok());
  EXPECT_TRUE(p.b);
  ASSERT_TRUE(Make(&p).Parse({"--flag=false"}).ok());
  EXPECT_FALSE(p.b);
  EXPECT_FALSE(Make(&p).Parse({"--flag=maybe"}).ok());
}

}  // namespace
}  // namespace msrtrace::cli
