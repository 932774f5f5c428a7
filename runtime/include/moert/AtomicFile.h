//===- AtomicFile.h - all-or-nothing file replacement -----------*- C++ -*-===//
//
// Checkpoints and outputs are written to a temporary file beside the target,
// fsynced and renamed over it, so a crash or a full disk never leaves a
// half-written file where a good one was.
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_ATOMICFILE_H
#define MOERT_ATOMICFILE_H

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

namespace moert {

/// Throws moert::Error where AtomicFile(path) would refuse `path`: when it
/// exists (links followed) and is not a regular file the caller may write.
/// Tools ask before the work whose result they will write.
void requireReplaceableFile(const std::string &path);

/// What a tool registers so that a signal ending it removes the temporary
/// files of the AtomicFiles it has open (LLVM's RemoveFileOnSignal; the
/// runtime does not link LLVM): `track` is called with a temporary file's
/// path when it is created, `untrack` once it is renamed or removed.
void setTemporaryFileTracking(void (*track)(const std::string &),
                              void (*untrack)(const std::string &));

class AtomicFile {
public:
  /// Creates the temporary file; throws moert::Error, also when `path`
  /// exists and is not a regular file the caller may write. A symbolic link
  /// is followed: the file it names is replaced. A new file gets
  /// `newFileMode` less the umask, a replaced one keeps its mode.
  explicit AtomicFile(std::string path, int newFileMode = 0666);
  AtomicFile(const AtomicFile &) = delete;
  AtomicFile &operator=(const AtomicFile &) = delete;
  /// Removes the temporary file unless commit() succeeded.
  ~AtomicFile();

  void write(const char *data, size_t size);
  /// Flushes to disk and renames the temporary file over the target.
  void commit();
  /// The temporary file, for a writer in another process (a linker writes
  /// into it in place; commit() sets its mode through the open file).
  const std::string &temporary() const { return temporaryPath; }

private:
  std::string path;   // as the caller named it, for errors
  std::string target; // the file replaced: `path` with links followed
  std::string temporaryPath;
  int fd = -1;
  int mode; // the permissions the file gets
};

/// The right to replace `path` for as long as it lives: an exclusive lock on
/// `FILE.lock`, FILE being the file `path` names (a link followed, as the
/// replacement follows it), so that two runs never write one checkpoint,
/// whatever they call it, held by the kernel and released when the process
/// ends however it ends. Taking it removes the temporary files that killed
/// writers left beside FILE (nobody else may be writing them) and proves
/// the directory writable.
class WriterLock {
public:
  /// Throws moert::Error when another process holds the lock or the lock
  /// file cannot be created. `covers`, where given, names the files beside
  /// FILE that the lock is for (a series of checkpoints, FILE its pattern):
  /// their temporaries are removed instead of FILE's, but for those of a
  /// file whose own lock another process holds (a run writing it alone).
  explicit WriterLock(
      const std::string &path,
      const std::function<bool(std::string_view name)> &covers = nullptr);
  WriterLock(const WriterLock &) = delete;
  WriterLock &operator=(const WriterLock &) = delete;
  ~WriterLock();

  /// How many leftover temporary files the lock removed.
  int removedTemporaries() const { return removed; }

  /// The file the lock is for (`path` with a link followed).
  const std::string &file() const { return lockedFile; }

private:
  std::string lockedFile;
  int fd = -1;
  int removed = 0;
};

} // namespace moert

#endif // MOERT_ATOMICFILE_H
