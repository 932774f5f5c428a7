//===- Collectives.cpp - the interpreter's collectives --------------------===//

#include "moe/Interpreter/Collectives.h"

#include "moert/Error.h"

#include <algorithm>
#include <memory>

using namespace mlir::moe::ref;

class ThreadGroup::RankCommunicator : public Communicator {
public:
  RankCommunicator(ThreadGroup &group, int64_t index)
      : group(group), index(index) {}
  int64_t rank() const override { return index; }
  int64_t size() const override { return group.size(); }
  std::vector<Tensor> exchange(const Tensor &local) override {
    return group.exchange(index, local);
  }

private:
  ThreadGroup &group;
  int64_t index;
};

SubgroupCommunicator::SubgroupCommunicator(Communicator &all,
                                           std::vector<int64_t> members)
    : all(all), members(std::move(members)) {
  auto mine = std::find(this->members.begin(), this->members.end(), all.rank());
  if (mine == this->members.end())
    moert::fail("rank {} is not a member of its own group", all.rank());
  index = mine - this->members.begin();
}

std::vector<Tensor> SubgroupCommunicator::exchange(const Tensor &local) {
  std::vector<Tensor> everyone = all.exchange(local);
  std::vector<Tensor> group;
  for (int64_t member : members)
    group.push_back(std::move(everyone.at(member)));
  return group;
}

ThreadGroup::ThreadGroup(int64_t size) : slots(size) {
  if (size < 1)
    moert::fail("a group needs at least one rank, got {}", size);
  for (int64_t rank = 0; rank < size; ++rank)
    communicators.push_back(std::make_unique<RankCommunicator>(*this, rank));
}

ThreadGroup::~ThreadGroup() = default;

Communicator &ThreadGroup::communicator(int64_t rank) {
  return *communicators.at(rank);
}

void ThreadGroup::abort() {
  std::lock_guard<std::mutex> lock(mutex);
  aborted = true;
  arrived.notify_all();
}

int64_t ThreadGroup::waitingRanks() {
  std::lock_guard<std::mutex> lock(mutex);
  return waiting;
}

void ThreadGroup::arrive(std::unique_lock<std::mutex> &lock) {
  if (aborted)
    moert::fail("a collective was abandoned: another rank failed");
  int64_t current = generation;
  if (++waiting == size()) {
    waiting = 0;
    ++generation;
    arrived.notify_all();
    return;
  }
  arrived.wait(lock, [&] { return generation != current || aborted; });
  if (generation == current)
    moert::fail("a collective was abandoned: another rank failed");
}

std::vector<Tensor> ThreadGroup::exchange(int64_t rank, const Tensor &local) {
  std::unique_lock<std::mutex> lock(mutex);
  slots[rank] = local;
  arrive(lock);
  std::vector<Tensor> all = slots;
  // Nobody writes a slot again before every rank has read them all.
  arrive(lock);
  return all;
}

namespace {

/// The sizes before, along and after `axis` of a row-major tensor.
struct AxisLayout {
  int64_t outer = 1, extent, inner = 1;
  AxisLayout(const std::vector<int64_t> &shape, int64_t axis)
      : extent(shape.at(axis)) {
    for (int64_t i = 0; i < axis; ++i)
      outer *= shape[i];
    for (size_t i = axis + 1; i < shape.size(); ++i)
      inner *= shape[i];
  }
};

void checkAxis(const Tensor &tensor, int64_t axis) {
  if (axis < 0 || axis >= static_cast<int64_t>(tensor.shape.size()))
    moert::fail("axis {} is out of range for a tensor of rank {}", axis,
                tensor.shape.size());
}

Tensor reduce(const std::vector<Tensor> &parts, Reduction reduction,
              DType dtype) {
  for (const Tensor &part : parts)
    if (part.shape != parts.front().shape)
      moert::fail("ranks reduce tensors of different shapes: {} and {}",
                  moert::formatShape(parts.front().shape),
                  moert::formatShape(part.shape));
  Tensor result = parts.front();
  result.dtype = dtype;
  for (size_t rank = 1; rank < parts.size(); ++rank)
    for (int64_t i = 0; i < result.numel(); ++i) {
      double value = parts[rank].data[i];
      double &total = result.data[i];
      total = reduction == Reduction::Sum   ? total + value
              : reduction == Reduction::Max ? std::max(total, value)
                                            : std::min(total, value);
    }
  result.roundToDType();
  return result;
}

} // namespace

std::vector<Tensor> mlir::moe::ref::split(const Tensor &tensor, int64_t axis,
                                          int64_t parts) {
  checkAxis(tensor, axis);
  AxisLayout layout(tensor.shape, axis);
  if (layout.extent % parts != 0)
    moert::fail("axis {} of size {} does not split into {} equal parts", axis,
                layout.extent, parts);
  int64_t extent = layout.extent / parts;
  std::vector<Tensor> result;
  for (int64_t part = 0; part < parts; ++part) {
    std::vector<int64_t> shape = tensor.shape;
    shape[axis] = extent;
    Tensor piece = Tensor::zeros(tensor.dtype, shape);
    for (int64_t o = 0; o < layout.outer; ++o)
      std::copy_n(tensor.data.begin() +
                      (o * layout.extent + part * extent) * layout.inner,
                  extent * layout.inner,
                  piece.data.begin() + o * extent * layout.inner);
    result.push_back(std::move(piece));
  }
  return result;
}

Tensor mlir::moe::ref::concatenate(const std::vector<Tensor> &tensors,
                                   int64_t axis) {
  const Tensor &first = tensors.front();
  checkAxis(first, axis);
  std::vector<int64_t> shape = first.shape;
  shape[axis] = 0;
  for (const Tensor &tensor : tensors) {
    std::vector<int64_t> expected = first.shape, given = tensor.shape;
    expected[axis] = given.at(axis);
    if (given != expected)
      moert::fail("tensors to concatenate along axis {} differ in another "
                  "axis: {} and {}",
                  axis, moert::formatShape(first.shape),
                  moert::formatShape(tensor.shape));
    shape[axis] += tensor.shape[axis];
  }
  Tensor result = Tensor::zeros(first.dtype, shape);
  AxisLayout layout(shape, axis);
  int64_t offset = 0;
  for (const Tensor &tensor : tensors) {
    int64_t extent = tensor.shape[axis];
    for (int64_t o = 0; o < layout.outer; ++o)
      std::copy_n(tensor.data.begin() + o * extent * layout.inner,
                  extent * layout.inner,
                  result.data.begin() +
                      (o * layout.extent + offset) * layout.inner);
    offset += extent;
  }
  return result;
}

Tensor mlir::moe::ref::allGather(Communicator &comm, const Tensor &local,
                                 int64_t axis) {
  return concatenate(comm.exchange(local), axis);
}

Tensor mlir::moe::ref::allReduce(Communicator &comm, const Tensor &local,
                                 Reduction reduction, DType dtype) {
  return reduce(comm.exchange(local), reduction, dtype);
}

Tensor mlir::moe::ref::reduceScatter(Communicator &comm, const Tensor &local,
                                     int64_t axis, DType dtype) {
  Tensor total = reduce(comm.exchange(local), Reduction::Sum, dtype);
  return split(total, axis, comm.size())[comm.rank()];
}

Tensor mlir::moe::ref::allToAll(Communicator &comm, const Tensor &local,
                                int64_t splitAxis, int64_t concatAxis) {
  std::vector<Tensor> received;
  for (const Tensor &sent : comm.exchange(local))
    received.push_back(split(sent, splitAxis, comm.size())[comm.rank()]);
  return concatenate(received, concatAxis);
}

Tensor mlir::moe::ref::allSlice(const Communicator &comm, const Tensor &local,
                                int64_t axis) {
  return split(local, axis, comm.size())[comm.rank()];
}
