#include "harness/trace/atomic_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"

namespace msrtrace {
namespace {

absl::Status OsError(absl::string_view name, absl::string_view what, int err) {
  return absl::Status(absl::ErrnoToStatusCode(err),
                      absl::StrCat(name, ": ", what, ": ", strerror(err)));
}

std::string DirOf(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

}  // namespace

AtomicTarget::AtomicTarget(AtomicTarget&& o) noexcept
    : path_(std::move(o.path_)), temp_(std::move(o.temp_)) {
  o.temp_.clear();
}

AtomicTarget& AtomicTarget::operator=(AtomicTarget&& o) noexcept {
  if (this != &o) {
    Abandon();
    path_ = std::move(o.path_);
    temp_ = std::move(o.temp_);
    o.temp_.clear();
  }
  return *this;
}

absl::StatusOr<int> AtomicTarget::Open(const std::string& path, bool atomic) {
  Abandon();
  path_ = path;
  // lstat: a symbolic link (including /proc/self/fd/N) is written through, in place; renaming
  // over it would replace the link instead of the file it names.
  struct stat st;
  const bool exists = lstat(path.c_str(), &st) == 0;
  if (!atomic || (exists && !S_ISREG(st.st_mode))) {
    const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return OsError(path, "cannot create", errno);
    return fd;
  }
  std::string templ = absl::StrCat(path, ".tmp-XXXXXX");
  std::vector<char> buf(templ.begin(), templ.end());
  buf.push_back('\0');
  const int fd = mkostemp(buf.data(), O_CLOEXEC);
  if (fd < 0) return OsError(path, "cannot create", errno);
  temp_.assign(buf.data());
  // mkostemp creates 0600; give the result the mode a plain creat(0644) would (minus umask), or
  // keep the mode of the file it replaces.
  mode_t mode = 0644;
  if (exists) {
    mode = st.st_mode & 07777;
  } else {
    const mode_t mask = umask(022);
    umask(mask);
    mode &= ~mask;
  }
  if (fchmod(fd, mode) != 0) {
    const int err = errno;
    close(fd);
    Abandon();
    return OsError(path, "cannot create", err);
  }
  return fd;
}

absl::Status AtomicTarget::Commit() {
  if (temp_.empty()) return absl::OkStatus();
  if (rename(temp_.c_str(), path_.c_str()) != 0) {
    const int err = errno;
    Abandon();
    return OsError(path_, "cannot replace", err);
  }
  temp_.clear();
  const std::string dir = DirOf(path_);
  const int dfd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return OsError(path_, "cannot open its directory to fsync", errno);
  absl::Status s;
  while (fsync(dfd) != 0) {
    // Some file systems cannot fsync a directory; the rename is done either way.
    if (errno == EINTR) continue;
    if (errno != EINVAL && errno != EROFS) {
      s = OsError(path_, "fsync of the directory failed", errno);
    }
    break;
  }
  close(dfd);
  return s;
}

void AtomicTarget::Abandon() {
  if (temp_.empty()) return;
  unlink(temp_.c_str());
  temp_.clear();
}

absl::Status SyncIfRegular(int fd, absl::string_view name) {
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) return absl::OkStatus();
  while (fsync(fd) != 0) {
    if (errno != EINTR) return OsError(name, "fsync failed", errno);
  }
  return absl::OkStatus();
}

absl::Status WriteFully(int fd, absl::string_view data, absl::string_view name) {
  const char* p = data.data();
  size_t len = data.size();
  while (len > 0) {
    const ssize_t n = write(fd, p, len);
    if (n < 0) {
      if (errno == EINTR) continue;
      return OsError(name, "write failed", errno);
    }
    p += n;
    len -= static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

absl::Status WriteFileAtomically(const std::string& path, absl::string_view data) {
  if (path == "-") return WriteFully(1, data, "<stdout>");
  AtomicTarget target;
  absl::StatusOr<int> fd = target.Open(path);
  if (!fd.ok()) return fd.status();
  absl::Status s = WriteFully(*fd, data, path);
  if (s.ok()) s = SyncIfRegular(*fd, path);
  if (close(*fd) != 0 && s.ok()) s = OsError(path, "close failed", errno);
  if (!s.ok()) return s;  // The destructor removes the temporary file.
  return target.Commit();
}

}  // namespace msrtrace
