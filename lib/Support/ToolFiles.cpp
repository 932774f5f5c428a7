//===- ToolFiles.cpp - the tools' input and output files ------------------===//

#include "moe/Support/ToolFiles.h"

#include "moert/AtomicFile.h"
#include "moert/Error.h"
#include "moert/Files.h"
#include "moert/StandardStreams.h"

#include "llvm/Support/ErrorHandling.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Signals.h"

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

using namespace mlir;

namespace {

/// A raw_ostream into an AtomicFile. The file's write error is kept, not
/// thrown through LLVM's stream code, and raised by check().
class AtomicFileStream : public llvm::raw_ostream {
public:
  explicit AtomicFileStream(moert::AtomicFile &file) : file(file) {}
  ~AtomicFileStream() override { flush(); }

  void check() {
    flush();
    if (!error.empty())
      throw moert::Error(error);
  }

private:
  void write_impl(const char *data, size_t size) override {
    position += size;
    if (!error.empty())
      return;
    try {
      file.write(data, size);
    } catch (const moert::Error &failure) {
      error = failure.what();
    }
  }
  uint64_t current_pos() const override { return position; }

  moert::AtomicFile &file;
  uint64_t position = 0;
  std::string error;
};

/// Flushes `os` and raises its error, if any, naming `path`. A stream's
/// error left set would end the process with LLVM's fatal error instead.
void checkStream(llvm::raw_fd_ostream &os, llvm::StringRef path) {
  os.flush();
  if (std::error_code error = os.error()) {
    os.clear_error();
    moert::fail("{}: write failed: {}", path.str(), error.message());
  }
}

/// The name exitOnFatalError's line starts with (initToolFiles's).
const char *toolName = "tool";

void writeStderr(const char *text) {
  // No allocation: the bad-alloc handler must not allocate.
  for (size_t left = std::strlen(text); left > 0;) {
    ssize_t written = ::write(STDERR_FILENO, text, left);
    if (written <= 0)
      return;
    text += written;
    left -= static_cast<size_t>(written);
  }
}

/// LLVM's fatal and bad-alloc errors end the process with one error line;
/// the interrupt handlers remove the files registered for removal.
[[noreturn]] void exitWithError(const char *message) {
  writeStderr(toolName);
  writeStderr(": error: ");
  writeStderr(message);
  writeStderr("\n");
  llvm::sys::RunInterruptHandlers();
  std::_Exit(1);
}

void exitOnFatalError(void *, const char *reason, bool) {
  exitWithError(reason);
}

void exitOnBadAlloc(void *, const char *, bool) {
  exitWithError(moert::kOutOfMemory);
}

} // namespace

void moe::initToolFiles(const char *tool) {
  toolName = tool;
  moert::reportFailedWrites();
  moert::reserveStandardStreams();
  // A signal (Ctrl-C) removes the temporary files of unfinished outputs.
  moert::setTemporaryFileTracking(
      [](const std::string &path) { llvm::sys::RemoveFileOnSignal(path); },
      [](const std::string &path) { llvm::sys::DontRemoveFileOnSignal(path); });
  llvm::install_fatal_error_handler(exitOnFatalError);
  llvm::install_bad_alloc_error_handler(exitOnBadAlloc);
}

int moe::runTool(const std::function<int()> &body) {
  return moert::exitOnErrors(toolName, [&] {
    int status = body();
    if (status == 0)
      checkStream(llvm::outs(), "stdout");
    return status;
  });
}

std::string moe::modelInputPath(llvm::StringRef path) {
  if (path != "-" && llvm::sys::fs::is_directory(path))
    return (path.rtrim('/') + "/config.json").str();
  return path.str();
}

std::unique_ptr<llvm::MemoryBuffer> moe::readToolInput(llvm::StringRef path) {
  if (path != "-") {
    std::vector<char> bytes = moert::readRegularFile(path.str(), "input");
    return llvm::MemoryBuffer::getMemBufferCopy(
        llvm::StringRef(bytes.data(), bytes.size()), path);
  }
  // A second read would see the first one's end of input and blame the
  // second input's syntax.
  static bool stdinRead = false;
  if (stdinRead)
    moert::fail("'-' (standard input) is given for two inputs, and it can be "
                "read only once: give a file for one of them");
  stdinRead = true;
  llvm::ErrorOr<std::unique_ptr<llvm::MemoryBuffer>> buffer =
      llvm::MemoryBuffer::getSTDIN();
  if (!buffer)
    moert::fail("stdin: cannot read it: {}", buffer.getError().message());
  return std::move(*buffer);
}

void moe::requireReplaceableOutput(llvm::StringRef path, OutputKind kind,
                                   llvm::StringRef option) {
  struct stat status;
  if (stat(path.str().c_str(), &status) != 0 || !S_ISREG(status.st_mode) ||
      status.st_size == 0)
    return; // new, empty, or not a file, which the writer judges
  std::ifstream file(path.str(), std::ios::binary);
  std::string head(4096, '\0');
  file.read(head.data(), static_cast<std::streamsize>(head.size()));
  head.resize(static_cast<size_t>(file.gcount()));
  llvm::StringRef start(head);
  bool replaceable = kind == OutputKind::Executable
                         ? start.starts_with("\x7f"
                                             "ELF")
                         : !start.contains('\0') || start.starts_with("ML\xef"
                                                                      "R");
  if (!replaceable)
    moert::fail("{} {}: exists and is not {}: not replacing it", option.str(),
                path.str(),
                kind == OutputKind::Executable
                    ? "an executable (no ELF header)"
                    : "a text or MLIR bytecode file (a checkpoint or a "
                      "program?)");
}

bool moe::writeToolOutput(llvm::StringRef path,
                          llvm::function_ref<bool(llvm::raw_ostream &)> write,
                          llvm::StringRef option) {
  if (path == "-") {
    bool written = write(llvm::outs());
    checkStream(llvm::outs(), "stdout");
    return written;
  }
  // A device or a FIFO (also through a link, such as /dev/stdout) is
  // written to; AtomicFile refuses a directory.
  struct stat status;
  if (stat(path.str().c_str(), &status) == 0 && !S_ISREG(status.st_mode) &&
      !S_ISDIR(status.st_mode)) {
    std::error_code error;
    llvm::raw_fd_ostream os(path, error);
    if (error)
      moert::fail("{}: cannot open it: {}", path.str(), error.message());
    bool written = write(os);
    checkStream(os, path);
    return written;
  }
  requireReplaceableOutput(path, OutputKind::Text, option);
  moert::AtomicFile file(path.str());
  AtomicFileStream os(file);
  bool written = write(os);
  os.check();
  if (written)
    file.commit();
  return written;
}

void moe::requireOutputsApart(llvm::ArrayRef<moert::FileOption> outputs,
                              const moert::FileOption &input) {
  auto named = [](moert::FileOption file) {
    if (file.path == "-")
      file.path.clear();
    return file;
  };
  std::vector<moert::FileOption> files;
  for (const moert::FileOption &output : outputs)
    files.push_back(named(output));
  moert::requireDistinctFiles(files, {named(input)});
}
