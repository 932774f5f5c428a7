//===- ToolFiles.h - the tools' input and output files ----------*- C++ -*-===//
//
// How the tools read their input and write their output, so that a bad
// path gets a clear error instead of a hang, a crash or a damaged file.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_SUPPORT_TOOLFILES_H
#define MOE_SUPPORT_TOOLFILES_H

#include "moert/Files.h"

#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/STLFunctionalExtras.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/raw_ostream.h"

#include <functional>
#include <memory>

namespace mlir::moe {

/// What a tool's main does first, after InitLLVM: past a file size limit
/// or into a pipe whose reader is gone, writes fail with EFBIG or EPIPE,
/// which is reported, instead of SIGXFSZ or SIGPIPE killing the process
/// and leaving its temporary files (moert::reportFailedWrites); a signal
/// that ends it removes the temporary files of every AtomicFile it has
/// open (moert::setTemporaryFileTracking); a closed stdin, stdout or stderr
/// keeps its number (moert::reserveStandardStreams); and LLVM's fatal
/// errors (a thread that cannot start, memory that runs out, stdout that
/// cannot be written as the process ends) are one line "TOOL: error: ..."
/// and exit status 1, not an abort with a stack dump.
void initToolFiles(const char *tool);

/// A tool's main after initToolFiles: moert::exitOnErrors around `body`,
/// under the tool's name given there, whose success also needs what it
/// printed through llvm::outs() to have reached stdout (not a full disk or
/// a closed stdout).
int runTool(const std::function<int()> &body);

/// The contents of a tool's input: "-" is stdin; any other path must be a
/// regular file (moert::readRegularFile: a FIFO would block, a device such
/// as /dev/zero never ends). Throws moert::Error naming the path.
std::unique_ptr<llvm::MemoryBuffer> readToolInput(llvm::StringRef path);

/// A model input's path: a folder (a Hugging Face model's, as
/// save_pretrained writes it) stands for its config.json.
std::string modelInputPath(llvm::StringRef path);

/// What a tool writes to an output path, and so what an existing file there
/// must be for the tool to replace it: text (IR, C++ or CUDA source) or
/// MLIR bytecode, or an ELF executable. A checkpoint or a program named by
/// mistake is refused, not destroyed.
enum class OutputKind { Text, Executable };

/// Throws moert::Error, naming `option` and `path`, when `path` is a
/// nonempty regular file (links followed) whose first bytes say it is not
/// of `kind`: for Text, a NUL byte in its first 4 KiB, unless it starts as
/// MLIR bytecode does; for Executable, no ELF header.
void requireReplaceableOutput(llvm::StringRef path, OutputKind kind,
                              llvm::StringRef option);

/// Writes a tool's text output with `write`, which returns false after
/// reporting its own failure. "-" is stdout, and an existing device or FIFO
/// (such as /dev/null, or /dev/stdout's) is written to directly. A regular
/// file must be replaceable by text (requireReplaceableOutput) and is
/// written beside the path and renamed over it only when `write` succeeded
/// (moert::AtomicFile), so a failure leaves an existing file as it was, and
/// the output may be the input. Throws moert::Error, naming the path, when
/// writing fails. Returns what `write` returned.
bool writeToolOutput(llvm::StringRef path,
                     llvm::function_ref<bool(llvm::raw_ostream &)> write,
                     llvm::StringRef option = "-o");

/// Throws moert::Error when an output of a tool that turns its input into
/// another kind of file (a config into IR, IR into C++ or a binary) names
/// the input or another output. "-" (stdin, stdout) names no file.
void requireOutputsApart(llvm::ArrayRef<moert::FileOption> outputs,
                         const moert::FileOption &input);

} // namespace mlir::moe

#endif // MOE_SUPPORT_TOOLFILES_H
