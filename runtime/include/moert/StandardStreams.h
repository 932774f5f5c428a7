//===- StandardStreams.h - stdin, stdout and stderr kept honest -*- C++ -*-===//
//
// A process started with stdout closed (`>&-`) gives the next file it opens
// file descriptor 1, and then prints its progress into that file: a metrics
// file, a checkpoint's lock. And output that never arrived (a full disk) is
// a failed run, not a successful one.
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_STANDARDSTREAMS_H
#define MOERT_STANDARDSTREAMS_H

namespace moert {

/// Opens /dev/null on each of file descriptors 0, 1 and 2 that is closed,
/// in the direction its stream does not use (stdin write-only, stdout and
/// stderr read-only), so that no other file takes its number and each read
/// or write of it fails (EBADF) as on the closed stream.
void reserveStandardStreams();

/// Lets a write past the file size limit (SIGXFSZ) or into a pipe whose
/// reader is gone (SIGPIPE) fail with EFBIG or EPIPE, which the writer
/// reports, instead of killing the process without a word: a training run
/// piped into `head`, or a `tee` that died, goes on to its checkpoint.
/// Programs it runs inherit the ignored signals.
void reportFailedWrites();

/// Throws moert::Error when what the process printed on stdout did not all
/// arrive (a full disk, a closed stdout).
void requireStdoutWritten();

} // namespace moert

#endif // MOERT_STANDARDSTREAMS_H
