#include "tools/xml_writer.h"

#include "gtest/gtest.h"

namespace msrtrace::cli {
namespace {

TEST(XmlEscapeTest, MarkupCharactersBecomeEntities) {
  EXPECT_EQ(XmlEscape("a&b<c>d\"e'f", false), "a&amp;b&lt;c&gt;d&quot;e&apos;f");
  EXPECT_EQ(XmlEscape("a&b<c>d\"e'f", true), "a&amp;b&lt;c&gt;d&quot;e&apos;f");
}

TEST(XmlEscapeTest, AttributeKeepsTabAndNewlineAsCharacterReferences) {
  EXPECT_EQ(XmlEscape("a\tb\nc", true), "a&#9;b&#10;c");
  EXPECT_EQ(XmlEscape("a\tb\nc", false), "a\tb\nc");
  EXPECT_EQ(XmlEscape("a\rb", false), "a&#13;b");
}

TEST(XmlEscapeTest, DropsControlCharactersXmlCannotHold) {
  EXPECT_EQ(XmlEscape(std::string("a\0b\x01"
                                  "c\x1b",
                                  6),
                      false),
            "abc");
}

TEST(XmlEscapeTest, InvalidUtf8BecomesReplacementCharacter) {
  EXPECT_EQ(XmlEscape("a\xff"
                      "b",
                      true),
            "a\xef\xbf\xbd"
            "b");
  EXPECT_EQ(XmlEscape("\xc3\xa9", false), "\xc3\xa9");  // Valid UTF-8 is copied.
}

TEST(XmlWriterTest, NestsIndentsAndClosesEverything) {
  XmlWriter w;
  w.Open("suites", {{"name", "a<b"}, {"n", "2"}});
  w.Open("case");
  w.Element("failure", {{"message", "x\"y"}});
  w.Close();
  w.Element("out", {}, "1 < 2");
  const std::string doc = w.Finish();
  EXPECT_EQ(doc,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            "<suites name=\"a&lt;b\" n=\"2\">\n"
            "  <case>\n"
            "    <failure message=\"x&quot;y\"/>\n"
            "  </case>\n"
            "  <out>1 &lt; 2</out>\n"
            "</suites>\n");
}

TEST(XmlWriterTest, CloseWithNothingOpenIsHarmless) {
  XmlWriter w;
  w.Close();
  EXPECT_EQ(w.Finish(), "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
}

}  // namespace
}  // namespace msrtrace::cli
