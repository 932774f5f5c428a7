//===- ProfileReport.cpp - where a profiled train step's time goes --------===//

#include "ProfileReport.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <map>

namespace moert {

namespace {

/// `location` with its layer numbers replaced by '*', so that a call site
/// stands for the same call in every layer.
std::string foldLayers(const std::string &location) {
  std::string folded;
  for (size_t i = 0; i < location.size();) {
    bool segmentStart = i == 0 || location[i - 1] == '.';
    size_t end = i;
    while (end < location.size() &&
           std::isdigit(static_cast<unsigned char>(location[end])))
      ++end;
    if (segmentStart && end > i &&
        (end == location.size() || location[end] == '.')) {
      folded += '*';
      i = end;
      continue;
    }
    folded += location[i++];
  }
  return folded;
}

struct Row {
  /// The kernel, or the kernel and its call site.
  std::string name;
  int64_t calls = 0;
  double seconds = 0, flops = 0, bytes = 0;
};

} // namespace

StepProfile::StepProfile(const std::vector<const moe_function *> &functions) {
  for (const moe_function *function : functions) {
    name += (name.empty() ? "" : " + ") + std::string(function->name);
    for (int64_t i = 0; i < function->num_profile_sites; ++i)
      sites.push_back(&function->profile_sites[i]);
  }
}

void StepProfile::recordStep(double seconds) {
  if (stepsRecorded++ == 0) {
    warmUpSeconds = seconds;
    warmUp = siteTotals();
  }
  secondsRecorded += seconds;
}

std::vector<StepProfile::Totals> StepProfile::siteTotals() const {
  std::vector<Totals> totals(sites.size());
  for (size_t i = 0; i < sites.size(); ++i) {
    const moe_profile_site &site = *sites[i];
    totals[i] = {site.calls, static_cast<double>(site.nanoseconds) * 1e-9};
    // The first step is left out when there are others.
    if (stepsRecorded > 1) {
      totals[i].calls -= warmUp[i].calls;
      totals[i].seconds -= warmUp[i].seconds;
    }
  }
  return totals;
}

int64_t StepProfile::steps() const {
  return stepsRecorded > 1 ? stepsRecorded - 1 : stepsRecorded;
}

double StepProfile::seconds() const {
  return stepsRecorded > 1 ? secondsRecorded - warmUpSeconds : secondsRecorded;
}

std::string StepProfile::format() const {
  if (stepsRecorded == 0)
    return "";
  std::vector<Totals> totals = siteTotals();
  double perStep = 1.0 / static_cast<double>(steps());
  double stepMs = seconds() * perStep * 1e3;
  // Sums per kernel, and per kernel and folded location.
  std::map<std::string, Row> kernels;
  std::map<std::pair<std::string, std::string>, Row> places;
  Row all;
  for (size_t i = 0; i < sites.size(); ++i) {
    const moe_profile_site &site = *sites[i];
    std::string location = foldLayers(site.location);
    Row &kernel = kernels[site.kernel],
        &place = places[{site.kernel, location}];
    kernel.name = site.kernel;
    place.name = std::string(site.kernel) + " @ " + location;
    for (Row *row : {&kernel, &place, &all}) {
      row->calls += totals[i].calls;
      row->seconds += totals[i].seconds;
      row->flops += site.flops * static_cast<double>(totals[i].calls);
      row->bytes += site.bytes * static_cast<double>(totals[i].calls);
    }
  }
  auto costliest = [](auto &rows) {
    std::vector<Row> sorted;
    for (auto &entry : rows)
      sorted.push_back(entry.second);
    std::stable_sort(
        sorted.begin(), sorted.end(),
        [](const Row &a, const Row &b) { return a.seconds > b.seconds; });
    return sorted;
  };
  auto rates = [](const Row &row) {
    if (row.seconds <= 0)
      return fmt::format("{:>9} {:>8}", "-", "-");
    std::string gflops =
        row.flops > 0 ? fmt::format("{:.1f}", row.flops / row.seconds * 1e-9)
                      : "-";
    return fmt::format("{:>9} {:>8.1f}", gflops,
                       row.bytes / row.seconds * 1e-9);
  };
  std::string text = fmt::format(
      "profile of {} over {} step{}{}: {:.2f} ms/step, {:.2f} ms of it in "
      "{:.0f} kernel calls\n",
      name, steps(), steps() == 1 ? "" : "s",
      stepsRecorded > 1 ? " (the first one left out)" : "", stepMs,
      all.seconds * perStep * 1e3, static_cast<double>(all.calls) * perStep);
  auto header = [](const char *what, int width) {
    return fmt::format("{:<{}} {:>8} {:>9} {:>6} {:>9} {:>8}\n", what, width,
                       "calls", "ms/step", "share", "GFLOP/s", "GB/s");
  };
  auto line = [&](const std::string &name, const Row &row, int width) {
    return fmt::format("{:<{}} {:>8.0f} {:>9.3f} {:>5.1f}% {}\n", name, width,
                       static_cast<double>(row.calls) * perStep,
                       row.seconds * perStep * 1e3,
                       row.seconds * perStep * 1e3 / stepMs * 100, rates(row));
  };
  constexpr int kKernelWidth = 24, kSiteWidth = 52;
  text += header("kernel", kKernelWidth);
  for (const Row &row : costliest(kernels))
    text += line(row.name, row, kKernelWidth);
  constexpr size_t kSitesShown = 15;
  text += header("costliest call sites (layers folded)", kSiteWidth);
  std::vector<Row> bySite = costliest(places);
  for (size_t i = 0; i < std::min(kSitesShown, bySite.size()); ++i)
    text += line(bySite[i].name, bySite[i], kSiteWidth);
  return text;
}

nlohmann::json StepProfile::json() const {
  std::vector<Totals> totals = siteTotals();
  nlohmann::json figures = nlohmann::json::array();
  for (size_t i = 0; i < sites.size(); ++i) {
    const moe_profile_site &site = *sites[i];
    figures.push_back({{"kernel", site.kernel},
                       {"location", site.location},
                       {"flops", site.flops},
                       {"bytes", site.bytes},
                       {"calls", totals[i].calls},
                       {"seconds", totals[i].seconds}});
  }
  return {{"function", name},
          {"steps", steps()},
          {"seconds", seconds()},
          {"sites", figures}};
}

} // namespace moert
