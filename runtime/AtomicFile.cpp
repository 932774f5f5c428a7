//===- AtomicFile.cpp - all-or-nothing file replacement -------------------===//

#include "moert/AtomicFile.h"
#include "moert/Error.h"
#include "moert/Files.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <optional>
#include <random>
#include <string>

namespace {

/// AtomicFile's temporaries are the target's name, this prefix and a
/// suffix of letters and digits (WriterLock removes what killed writers
/// left).
constexpr char kTemporaryPrefix[] = ".tmp-";
constexpr size_t kTemporarySuffixLength = 6;
constexpr int kTemporaryAttempts = 100;

/// Random letters and digits, as mkstemp chooses them.
std::string randomSuffix() {
  static constexpr char kLetters[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  thread_local std::mt19937_64 generator{std::random_device{}()};
  std::uniform_int_distribution<size_t> pick(0, sizeof(kLetters) - 2);
  std::string suffix(kTemporarySuffixLength, ' ');
  for (char &letter : suffix)
    letter = kLetters[pick(generator)];
  return suffix;
}

/// The file that replacing `path` replaces (a symbolic link is followed:
/// the rename replaces the file it names, not the link, which may be
/// /dev/stdout), after checking that it is absent or a regular file the
/// caller may write; `existingMode` gets its permissions where it exists.
std::string replaceableTarget(const std::string &path,
                              std::optional<mode_t> &existingMode) {
  if (path.empty())
    moert::fail("an empty path names no file");
  std::string target = path;
  struct stat status;
  if (lstat(path.c_str(), &status) == 0 && S_ISLNK(status.st_mode)) {
    char *resolved = realpath(path.c_str(), nullptr);
    if (!resolved)
      moert::fail("{}: a symbolic link to nothing: {}", path,
                  moert::describeErrno());
    target = resolved;
    free(resolved);
  }
  // The rename would replace a device or a FIFO with a regular file, and
  // a file the user may not write (in a directory they may write).
  if (stat(target.c_str(), &status) == 0) {
    if (!S_ISREG(status.st_mode))
      moert::fail("{}: not a regular file: only a regular file is replaced",
                  path);
    if (access(path.c_str(), W_OK) != 0)
      moert::fail("{}: not writable: {}", path, moert::describeErrno());
    // Root passes access(): a file that nobody may write is kept anyway.
    if ((status.st_mode & 0222) == 0)
      moert::fail("{}: read-only (mode {:04o}): it is not replaced, even by "
                  "root (chmod u+w it to allow that)",
                  path, status.st_mode & 07777);
    // In a sticky folder (/tmp), only the file's or the folder's owner may
    // rename over it, whatever its mode.
    struct stat folder;
    uid_t user = geteuid();
    if (user != 0 && status.st_uid != user &&
        stat(moert::parentDirectory(target).c_str(), &folder) == 0 &&
        (folder.st_mode & S_ISVTX) != 0 && folder.st_uid != user)
      moert::fail("{}: in a sticky folder (as /tmp is) and another user's: "
                  "it cannot be replaced",
                  path);
    // Root may write anything, but not rename over an append-only file:
    // the rename would fail after the work (a whole training run).
    int fd = open(target.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    int attributes = 0;
    bool appendOnly = fd >= 0 && ioctl(fd, FS_IOC_GETFLAGS, &attributes) == 0 &&
                      (attributes & (FS_APPEND_FL | FS_IMMUTABLE_FL)) != 0;
    if (fd >= 0)
      close(fd);
    if (appendOnly)
      moert::fail("{}: append-only or immutable (chattr +a or +i): it "
                  "cannot be replaced",
                  path);
    existingMode = status.st_mode & 07777;
  }
  return target;
}

} // namespace

void moert::requireReplaceableFile(const std::string &path) {
  std::optional<mode_t> existingMode;
  replaceableTarget(path, existingMode);
}

namespace {
void (*trackTemporary)(const std::string &) = nullptr;
void (*untrackTemporary)(const std::string &) = nullptr;
} // namespace

void moert::setTemporaryFileTracking(void (*track)(const std::string &),
                                     void (*untrack)(const std::string &)) {
  trackTemporary = track;
  untrackTemporary = untrack;
}

moert::AtomicFile::AtomicFile(std::string pathArg, int newFileMode)
    : path(std::move(pathArg)) {
  std::optional<mode_t> existingMode;
  target = replaceableTarget(path, existingMode);
  mode_t mask = umask(0);
  umask(mask);
  mode = existingMode ? static_cast<int>(*existingMode)
                      : newFileMode & ~static_cast<int>(mask);
  // The name is tracked before the file exists (mkstemp would create it
  // untracked), so that a signal at any moment removes what exists.
  for (int attempt = 1;; ++attempt) {
    std::string candidate = target + kTemporaryPrefix + randomSuffix();
    if (trackTemporary)
      trackTemporary(candidate);
    fd = open(candidate.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd >= 0) {
      temporaryPath = candidate;
      return;
    }
    int error = errno;
    if (untrackTemporary)
      untrackTemporary(candidate);
    if (error != EEXIST || attempt == kTemporaryAttempts) {
      errno = error;
      fail("{}: cannot create a temporary file beside it: {}", path,
           describeErrno());
    }
  }
}

moert::AtomicFile::~AtomicFile() {
  if (fd >= 0)
    close(fd);
  if (temporaryPath.empty())
    return;
  unlink(temporaryPath.c_str());
  if (untrackTemporary)
    untrackTemporary(temporaryPath);
}

void moert::AtomicFile::write(const char *data, size_t size) {
  while (size > 0) {
    ssize_t written = ::write(fd, data, size);
    if (written < 0)
      fail("{}: write failed: {}", path, describeErrno());
    data += written;
    size -= static_cast<size_t>(written);
  }
}

void moert::AtomicFile::commit() {
  // The temporary file is created 0600.
  if (fchmod(fd, static_cast<mode_t>(mode)) != 0)
    fail("{}: cannot set the file mode: {}", path, describeErrno());
  if (fsync(fd) != 0)
    fail("{}: fsync failed: {}", path, describeErrno());
  int closed = close(fd);
  fd = -1;
  if (closed != 0)
    fail("{}: close failed: {}", path, describeErrno());
  if (rename(temporaryPath.c_str(), target.c_str()) != 0)
    fail("{}: cannot replace the file: {}", path, describeErrno());
  if (untrackTemporary)
    untrackTemporary(temporaryPath);
  temporaryPath.clear();
  // The rename is durable once the directory entry is on disk.
  int dir =
      open(moert::parentDirectory(target).c_str(), O_RDONLY | O_DIRECTORY);
  if (dir >= 0) {
    fsync(dir);
    close(dir);
  }
}

moert::WriterLock::WriterLock(
    const std::string &path,
    const std::function<bool(std::string_view name)> &covers) {
  // The file a link names: the lock and the temporaries are beside it
  // (another spelling of its folder reaches the same lock file).
  std::optional<mode_t> existingMode;
  lockedFile = replaceableTarget(path, existingMode);
  std::string lockPath = lockedFile + ".lock";
  fd = open(lockPath.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0666);
  if (fd < 0)
    fail("{}: cannot write beside it ({}): {}", path, lockPath,
         describeErrno());
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    std::string reason =
        errno == EWOULDBLOCK
            ? "another run is writing it (it holds " + lockPath + ")"
            : "cannot lock " + lockPath + ": " + describeErrno();
    close(fd);
    fd = -1;
    fail("{}: {}", path, reason);
  }
  std::string directory = moert::parentDirectory(lockedFile);
  std::string name = lockedFile.substr(lockedFile.rfind('/') + 1);
  // The file a temporary is written for (the prefix and the random suffix
  // after its name), or nullopt for another entry.
  auto targetOf =
      [](std::string_view entry) -> std::optional<std::string_view> {
    size_t tail = std::strlen(kTemporaryPrefix) + kTemporarySuffixLength;
    if (entry.size() <= tail ||
        entry.substr(entry.size() - tail, std::strlen(kTemporaryPrefix)) !=
            kTemporaryPrefix)
      return std::nullopt;
    return entry.substr(0, entry.size() - tail);
  };
  // A covered file may have a writer of its own (a run writing it alone),
  // which holds that file's lock: its temporary is removed only while the
  // lock is free, taken for the removal.
  auto removeTemporary = [&](std::string_view entry, std::string_view target) {
    int ownLock = -1;
    if (target != name) {
      ownLock = open((directory + "/" + std::string(target) + ".lock").c_str(),
                     O_RDWR | O_CLOEXEC);
      if (ownLock >= 0 && flock(ownLock, LOCK_EX | LOCK_NB) != 0) {
        close(ownLock);
        return;
      }
    }
    if (unlink((directory + "/" + std::string(entry)).c_str()) == 0)
      ++removed;
    if (ownLock >= 0)
      close(ownLock);
  };
  if (DIR *entries = opendir(directory.c_str())) {
    while (dirent *entry = readdir(entries))
      if (std::optional<std::string_view> target = targetOf(entry->d_name);
          target && (covers ? covers(*target) : *target == name))
        removeTemporary(entry->d_name, *target);
    closedir(entries);
  }
}

moert::WriterLock::~WriterLock() {
  if (fd >= 0)
    close(fd);
}
