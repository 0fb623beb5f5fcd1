// Output files that replace their target atomically, and checked writes.
//
// Every file msrtrace writes at a user-given path (-o traces, converted traces, JUnit reports)
// goes through AtomicTarget: the data is written to a temporary file in the same directory
// ("<path>.tmp-XXXXXX"), which Commit() renames over `path` after the caller has fsynced and
// closed it, and then fsyncs the directory so the rename itself is durable. Until Commit() the
// old file at `path` is untouched: a failed command leaves it as it was and removes the
// temporary file (Abandon(), also done by the destructor); a killed one leaves the temporary
// file beside it. A target that exists and is not a regular file (/dev/full, a FIFO, a symbolic
// link such as /proc/self/fd/N) is written in place, through the link: renaming over it would
// replace the device or the link rather than write to what it names.
#ifndef MSRTRACE_HARNESS_ATOMIC_FILE_H_
#define MSRTRACE_HARNESS_ATOMIC_FILE_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace msrtrace {

class AtomicTarget {
 public:
  AtomicTarget() = default;
  AtomicTarget(AtomicTarget&& o) noexcept;
  AtomicTarget& operator=(AtomicTarget&& o) noexcept;
  AtomicTarget(const AtomicTarget&) = delete;
  AtomicTarget& operator=(const AtomicTarget&) = delete;
  ~AtomicTarget() { Abandon(); }

  // Returns a descriptor (O_CLOEXEC) to write `path`'s new content to: a fresh temporary file
  // beside it, or with atomic == false (or a non-regular target) `path` itself, truncated. The
  // caller owns and closes the descriptor. Errors name `path` and the OS reason.
  absl::StatusOr<int> Open(const std::string& path, bool atomic = true);
  // After the caller fsynced and closed the descriptor: renames the temporary file over the
  // target and fsyncs the directory. No-op for an in-place target.
  absl::Status Commit();
  // Removes the temporary file (no-op after Commit or for an in-place target).
  void Abandon();

  const std::string& temp_path() const { return temp_; }

 private:
  std::string path_;
  std::string temp_;  // Empty: writing in place, or already committed/abandoned.
};

// fsync(fd) when `fd` is a regular file (pipes, terminals and devices cannot be synced).
absl::Status SyncIfRegular(int fd, absl::string_view name);

// write(2) of all of `data`, looping over short writes and EINTR. Errors name `name` and the
// OS reason ("out.json: write failed: No space left on device").
absl::Status WriteFully(int fd, absl::string_view data, absl::string_view name);

// A whole text output written at once: to stdout for "-" (checked write and no close), else
// atomically through AtomicTarget with fsync.
absl::Status WriteFileAtomically(const std::string& path, absl::string_view data);

}  // namespace msrtrace

#endif  // MSRTRACE_HARNESS_ATOMIC_FILE_H_
