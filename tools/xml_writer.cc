#include "tools/xml_writer.h"

#include "absl/strings/str_cat.h"
#include "harness/core/utf8.h"

namespace msrtrace::cli {

std::string XmlEscape(absl::string_view in, bool attribute) {
  const std::string s = ValidUtf8(in);
  std::string out;
  out.reserve(s.size());
  for (const char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&apos;";
        break;
      case '\t':
        out += attribute ? "&#9;" : "\t";
        break;
      case '\n':
        out += attribute ? "&#10;" : "\n";
        break;
      case '\r':
        out += "&#13;";  // A raw CR in text would be read back as a newline.
        break;
      default:
        if (static_cast<unsigned char>(c) >= 0x20) out += c;
    }
  }
  return out;
}

XmlWriter::XmlWriter() : out_("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n") {}

void XmlWriter::StartTag(absl::string_view name, Attributes attributes) {
  out_.append(2 * open_.size(), ' ');
  absl::StrAppend(&out_, "<", name);
  for (const auto& [key, value] : attributes) {
    absl::StrAppend(&out_, " ", key, "=\"", XmlEscape(value, /*attribute=*/true), "\"");
  }
}

void XmlWriter::Open(absl::string_view name, Attributes attributes) {
  StartTag(name, attributes);
  out_ += ">\n";
  open_.emplace_back(name);
}

void XmlWriter::Element(absl::string_view name, Attributes attributes, absl::string_view text) {
  StartTag(name, attributes);
  if (text.empty()) {
    out_ += "/>\n";
  } else {
    absl::StrAppend(&out_, ">", XmlEscape(text, /*attribute=*/false), "</", name, ">\n");
  }
}

void XmlWriter::Close() {
  if (open_.empty()) return;
  const std::string name = std::move(open_.back());
  open_.pop_back();
  out_.append(2 * open_.size(), ' ');
  absl::StrAppend(&out_, "</", name, ">\n");
}

std::string XmlWriter::Finish() {
  while (!open_.empty()) Close();
  return std::move(out_);
}

}  // namespace msrtrace::cli
