// Status helpers. Abseil 20220623 has no RETURN_IF_ERROR / ASSIGN_OR_RETURN, so msrtrace keeps
// the two macros here. Every fallible edge in msrtrace returns absl::Status or absl::StatusOr.
#ifndef MSRTRACE_HARNESS_STATUS_MACROS_H_
#define MSRTRACE_HARNESS_STATUS_MACROS_H_

#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define MSRTRACE_CONCAT_INNER_(a, b) a##b
#define MSRTRACE_CONCAT_(a, b) MSRTRACE_CONCAT_INNER_(a, b)

// Evaluates `expr` (an absl::Status) and returns it from the enclosing function if it is an
// error.
#define RETURN_IF_ERROR(expr)                                                \
  do {                                                                       \
    ::absl::Status msrtrace_status_ = (expr);                                \
    if (ABSL_PREDICT_FALSE(!msrtrace_status_.ok())) return msrtrace_status_; \
  } while (0)

// ASSIGN_OR_RETURN(lhs, expr): evaluates `expr` (an absl::StatusOr<T>); on error returns the
// status, otherwise move-assigns the value to `lhs` (which may be a declaration).
#define ASSIGN_OR_RETURN(lhs, expr) \
  MSRTRACE_ASSIGN_OR_RETURN_IMPL_(MSRTRACE_CONCAT_(msrtrace_statusor_, __LINE__), lhs, expr)

// `statusor` is an identifier this macro declares and `lhs` may be a declaration
// (`const Foo x`), so neither can be parenthesized; `expr` is.
// NOLINTBEGIN(bugprone-macro-parentheses)
#define MSRTRACE_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, expr) \
  auto statusor = (expr);                                    \
  if (ABSL_PREDICT_FALSE(!statusor.ok())) {                  \
    return std::move(statusor).status();                     \
  }                                                          \
  lhs = std::move(statusor).value()
// NOLINTEND(bugprone-macro-parentheses)

#endif  // MSRTRACE_HARNESS_STATUS_MACROS_H_
