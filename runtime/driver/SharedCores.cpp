//===- SharedCores.cpp - ranks that run on the same cores -----------------===//

#include "SharedCores.h"

#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

int64_t moert::ranksSharingCores(const moe_model &model,
                                 const RankGroup &group) {
  // The host's name and the cores this rank may run on, as one hash.
  std::string key(256, '\0');
  if (gethostname(key.data(), key.size()) != 0)
    key.clear();
  cpu_set_t cores;
  CPU_ZERO(&cores);
  if (sched_getaffinity(0, sizeof cores, &cores) == 0)
    key.append(reinterpret_cast<const char *>(&cores), sizeof cores);
  uint64_t mine = std::hash<std::string_view>()(key);
  std::vector<uint64_t> keys(group.ranks);
  model.target->gather(group.allAxes(), &mine, sizeof mine, keys.data());
  return std::count(keys.begin(), keys.end(), mine);
}
