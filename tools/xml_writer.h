// A small XML writer for the reports msrtrace writes as XML (the JUnit file of `msrtrace replay
// --junit`): elements with attributes, text, one element per line indented by depth. Every name
// is the caller's constant; every attribute value and text is escaped here, so the document is
// well-formed whatever bytes a trace path or message holds.
#ifndef MSRTRACE_TOOLS_XML_WRITER_H_
#define MSRTRACE_TOOLS_XML_WRITER_H_

#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"

namespace msrtrace::cli {

// `in` escaped for XML 1.0 character data or a double-quoted attribute value: & < > " ' as
// entities; tab, newline and carriage return as character references when `attribute` (an
// attribute value would otherwise have them normalized to spaces), kept as they are in text;
// other control characters, which XML 1.0 cannot hold at all, dropped; bytes that are not valid
// UTF-8 replaced by U+FFFD (the document declares UTF-8).
std::string XmlEscape(absl::string_view in, bool attribute);

class XmlWriter {
 public:
  using Attributes = std::initializer_list<std::pair<absl::string_view, std::string>>;

  // Starts the document with its declaration (<?xml version="1.0" encoding="UTF-8"?>).
  XmlWriter();

  // <name a="v" ...> on its own line; closed by Close().
  void Open(absl::string_view name, Attributes attributes = {});
  // <name a="v" ...>text</name> (or <name .../> when `text` is empty) on its own line.
  void Element(absl::string_view name, Attributes attributes = {}, absl::string_view text = {});
  // </name> of the innermost open element.
  void Close();

  // Closes every open element and returns the document.
  std::string Finish();

 private:
  void StartTag(absl::string_view name, Attributes attributes);

  std::string out_;
  std::vector<std::string> open_;  // Names of the open elements, outermost first.
};

}  // namespace msrtrace::cli

#endif  // MSRTRACE_TOOLS_XML_WRITER_H_
