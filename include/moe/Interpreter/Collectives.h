//===- Collectives.h - the interpreter's collectives ------------*- C++ -*-===//
//
// Reference semantics of the shard dialect's collectives, for SPMD programs
// that moe-run runs as P ranks, one thread each. Every
// collective is built from one primitive, exchanging whole tensors, and
// reduces in rank order, so that results do not depend on timing.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_INTERPRETER_COLLECTIVES_H
#define MOE_INTERPRETER_COLLECTIVES_H

#include "moe/Interpreter/Tensor.h"

#include <condition_variable>
#include <mutex>

namespace mlir::moe::ref {

/// One rank's end of a group of ranks running the same program.
class Communicator {
public:
  virtual ~Communicator() = default;
  virtual int64_t rank() const = 0;
  virtual int64_t size() const = 0;
  /// Every rank's `local`, in rank order, once every rank has called it;
  /// throws moert::Error when the group was aborted.
  virtual std::vector<Tensor> exchange(const Tensor &local) = 0;
};

/// The group of a collective over some axes of a grid (moert::gridGroup)
/// as a communicator of its own. Every rank of `all` runs the same
/// collective at once (SPMD), so an exchange of the group is one of `all`,
/// of which each rank keeps its group's tensors.
class SubgroupCommunicator : public Communicator {
public:
  /// `members`: the ranks of `all` in the group, in group order; `all`'s
  /// rank among them.
  SubgroupCommunicator(Communicator &all, std::vector<int64_t> members);
  int64_t rank() const override { return index; }
  int64_t size() const override { return static_cast<int64_t>(members.size()); }
  std::vector<Tensor> exchange(const Tensor &local) override;

private:
  Communicator &all;
  std::vector<int64_t> members;
  int64_t index;
};

/// P ranks as threads of this process, meeting at each exchange.
class ThreadGroup {
public:
  explicit ThreadGroup(int64_t size);
  ~ThreadGroup();
  int64_t size() const { return static_cast<int64_t>(slots.size()); }
  /// The communicator of rank `rank`.
  Communicator &communicator(int64_t rank);
  /// Ends the group: ranks waiting in an exchange, and every later one,
  /// throw instead of waiting for a rank that will not come.
  void abort();
  /// How many ranks wait in an exchange for the others now.
  int64_t waitingRanks();

private:
  class RankCommunicator;
  std::vector<Tensor> exchange(int64_t rank, const Tensor &local);
  /// Waits until every rank has arrived (or the group is aborted).
  void arrive(std::unique_lock<std::mutex> &lock);

  std::mutex mutex;
  std::condition_variable arrived;
  std::vector<Tensor> slots;
  std::vector<std::unique_ptr<RankCommunicator>> communicators;
  int64_t waiting = 0;
  int64_t generation = 0;
  bool aborted = false;
};

enum class Reduction { Sum, Max, Min };

/// Every rank's `local` concatenated along `axis`.
Tensor allGather(Communicator &comm, const Tensor &local, int64_t axis);
/// The element-wise reduction of every rank's `local`, as `dtype`.
Tensor allReduce(Communicator &comm, const Tensor &local, Reduction reduction,
                 DType dtype);
/// This rank's part (along `axis`) of the sum of every rank's `local`.
Tensor reduceScatter(Communicator &comm, const Tensor &local, int64_t axis,
                     DType dtype);
/// Part q of `local` along `splitAxis` goes to rank q; the parts received
/// are concatenated along `concatAxis` in rank order.
Tensor allToAll(Communicator &comm, const Tensor &local, int64_t splitAxis,
                int64_t concatAxis);
/// This rank's part of `local` along `axis` (no communication).
Tensor allSlice(const Communicator &comm, const Tensor &local, int64_t axis);

/// The `parts` equal parts of `tensor` along `axis`.
std::vector<Tensor> split(const Tensor &tensor, int64_t axis, int64_t parts);
/// `tensors` (equal but for `axis`) concatenated along `axis`.
Tensor concatenate(const std::vector<Tensor> &tensors, int64_t axis);

} // namespace mlir::moe::ref

#endif // MOE_INTERPRETER_COLLECTIVES_H
