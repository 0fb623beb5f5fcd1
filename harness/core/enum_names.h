// Enum <-> name tables: each enum's names are written once, as a table, and both directions are
// read from it (no hand-written inverse to drift from the forward switch).
//
//   constexpr EnumName<Color> kColorNames[] = {{Color::kRed, "red"}, {Color::kBlue, "blue"}};
//   const char* ColorName(Color c) { return NameOf(kColorNames, c, "unknown"); }
//   absl::optional<Color> ParseColor(absl::string_view s) { return ValueOf(kColorNames, s); }
//
// A table may list a value twice (an alias, e.g. "gp" for "inject-gp"): NameOf gives the first
// name, ValueOf accepts every one.
#ifndef MSRTRACE_HARNESS_CORE_ENUM_NAMES_H_
#define MSRTRACE_HARNESS_CORE_ENUM_NAMES_H_

#include <cstddef>

#include "absl/strings/string_view.h"
#include "absl/types/optional.h"

namespace msrtrace {

template <typename E>
struct EnumName {
  E value;
  const char* name;
};

// The first name of `value` in `table`, or `fallback` if it has none.
template <typename E, size_t N>
constexpr const char* NameOf(const EnumName<E> (&table)[N], E value, const char* fallback) {
  for (const EnumName<E>& e : table) {
    if (e.value == value) return e.name;
  }
  return fallback;
}

// The value `name` names in `table`, or nullopt.
template <typename E, size_t N>
absl::optional<E> ValueOf(const EnumName<E> (&table)[N], absl::string_view name) {
  for (const EnumName<E>& e : table) {
    if (name == e.name) return e.value;
  }
  return absl::nullopt;
}

}  // namespace msrtrace

#endif  // MSRTRACE_HARNESS_CORE_ENUM_NAMES_H_
