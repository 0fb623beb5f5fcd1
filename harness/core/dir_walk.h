// The one directory walker of msrtrace (replay/stats directory arguments, the fuzz targets'
// standalone corpus runner and team replayers). Header-only and dependency-free (POSIX and the
// standard library), so the fuzz mains can use it without linking the harness.
//
// Rules:
//   * Entries are visited in byte order of their names, depth first; the result is in that
//     order.
//   * Symbolic links are followed (a link to a directory is walked, a link to a file is
//     listed), but every directory is entered at most once and every file is listed at most
//     once, identified by (device, inode): a symlink cycle, or a second link to the same
//     directory or file, adds nothing. The first path in walk order is the one listed.
//   * Only regular files whose name `match` accepts are listed; other files are ignored.
//   * Problems never stop the walk; each becomes one line in `problems` naming the path: a
//     directory that cannot be read, and a symlink whose name `match` accepts but whose target
//     does not exist ("dangling symlink").
#ifndef MSRTRACE_HARNESS_DIR_WALK_H_
#define MSRTRACE_HARNESS_DIR_WALK_H_

#include <dirent.h>
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include <algorithm>
#include <functional>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace msrtrace {

class DirWalker {
 public:
  explicit DirWalker(std::function<bool(const std::string& name)> match)
      : match_(std::move(match)) {}

  // Walks `root` (a directory, or a symlink to one) and appends what it finds. Returns false if
  // it added a problem.
  bool Walk(const std::string& root, std::vector<std::string>* files,
            std::vector<std::string>* problems) {
    const size_t before = problems->size();
    struct stat st;
    if (stat(root.c_str(), &st) != 0) {
      problems->push_back(root + ": " + strerror(errno));
      return false;
    }
    WalkDir(root, st, files, problems);
    return problems->size() == before;
  }

  // Whether `dir` was already entered by an earlier Walk() (directly or through a link).
  bool Entered(const std::string& dir) const {
    struct stat st;
    return stat(dir.c_str(), &st) == 0 && dirs_.count(Id(st.st_dev, st.st_ino)) != 0;
  }

 private:
  using Id = std::pair<dev_t, ino_t>;

  void WalkDir(const std::string& dir, const struct stat& dst, std::vector<std::string>* files,
               std::vector<std::string>* problems) {
    if (!dirs_.insert(Id(dst.st_dev, dst.st_ino)).second) return;  // Seen: cycle or alias.
    DIR* d = opendir(dir.c_str());
    if (d == nullptr) {
      problems->push_back(dir + ": cannot read directory: " + strerror(errno));
      return;
    }
    std::vector<std::string> names;
    while (const dirent* e = readdir(d)) {
      const std::string n = e->d_name;
      if (n != "." && n != "..") names.push_back(n);
    }
    closedir(d);
    std::sort(names.begin(), names.end());
    const std::string prefix = dir.empty() || dir.back() == '/' ? dir : dir + "/";
    for (const std::string& n : names) {
      const std::string p = prefix + n;
      struct stat st;
      if (stat(p.c_str(), &st) != 0) {
        struct stat lst;
        if (lstat(p.c_str(), &lst) == 0 && S_ISLNK(lst.st_mode) && match_(n)) {
          problems->push_back(p + ": dangling symlink (" + strerror(errno) + ")");
        }
        continue;
      }
      if (S_ISDIR(st.st_mode)) {
        WalkDir(p, st, files, problems);
      } else if (S_ISREG(st.st_mode) && match_(n) &&
                 files_.insert(Id(st.st_dev, st.st_ino)).second) {
        files->push_back(p);
      }
    }
  }

  std::function<bool(const std::string&)> match_;
  std::set<Id> dirs_;
  std::set<Id> files_;
};

}  // namespace msrtrace

#endif  // MSRTRACE_HARNESS_DIR_WALK_H_
