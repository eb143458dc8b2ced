// Strategy overhead per proposal: every strategy on a space of exactly 20,000
// configurations for 1,000 evaluations, timing each propose + observe.
//
//   build/bench/tunekit_proposal_bench [--json FILE] [--strategies a,b,...]
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "tunekit/strategy.hpp"

namespace {

std::vector<tunekit::parameter_value> positions(int count) {
  std::vector<tunekit::parameter_value> values;
  for (int i = 0; i < count; ++i) values.emplace_back(std::int64_t{1} << i);
  return values;
}

// A rugged bowl with ~10% failures, cheap and deterministic.
tunekit::evaluation_result objective(const tunekit::search_space& space, std::size_t index) {
  double value = 1.0;
  std::uint64_t hash = index * 0x9E3779B97F4A7C15ULL;
  for (std::size_t p = 0; p < space.parameters().size(); ++p) {
    const double x = space.value_index(index, p) - 1.7 - 0.3 * static_cast<double>(p);
    value += 0.2 * x * x;
  }
  hash ^= hash >> 29;
  if (hash % 10 == 0) return {tunekit::evaluation_status::launch_error, 0.0, 0.0};
  return {tunekit::evaluation_status::ok, value * (1.0 + 0.05 * static_cast<double>(hash % 97) / 97.0), 0.0};
}

}  // namespace

int main(int argc, char** argv) {
  std::string json_path;
  std::vector<std::string> names = tunekit::strategy_names();
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--json") {
      json_path = argv[i + 1];
    } else if (flag == "--strategies") {
      names.clear();
      std::stringstream list(argv[i + 1]);
      for (std::string name; std::getline(list, name, ',');) names.push_back(name);
    }
  }
  tunekit::space_definition definition;
  // 5 × 5 × 5 × 5 × 4 × 8 = 20,000 configurations.
  for (const char* name : {"p0", "p1", "p2", "p3"}) definition.parameters.push_back({name, positions(5)});
  definition.parameters.push_back({"p4", positions(4)});
  definition.parameters.push_back({"p5", positions(8)});
  const auto space = tunekit::search_space::enumerate(definition);
  constexpr std::size_t evaluations = 1000;

  std::ostringstream json;
  json << "{\"configurations\": " << space.size() << ", \"evaluations\": " << evaluations << ", \"strategies\": {";
  bool first = true;
  for (const auto& name : names) {
    auto search = tunekit::make_strategy(name);
    std::vector<double> milliseconds;
    using clock = std::chrono::steady_clock;
    auto started = clock::now();
    search->start(space, 1);
    const double start_ms = std::chrono::duration<double, std::milli>(clock::now() - started).count();
    for (std::size_t e = 0; e < evaluations; ++e) {
      started = clock::now();
      const auto index = search->propose();
      const double proposing = std::chrono::duration<double, std::milli>(clock::now() - started).count();
      if (!index) break;
      const auto result = objective(space, *index);
      started = clock::now();
      search->observe(*index, result);
      milliseconds.push_back(proposing + std::chrono::duration<double, std::milli>(clock::now() - started).count());
    }
    std::vector<double> sorted = milliseconds;
    std::sort(sorted.begin(), sorted.end());
    double mean = 0.0;
    for (double each : sorted) mean += each / static_cast<double>(sorted.size());
    const auto at = [&](double q) { return sorted[static_cast<std::size_t>(q * static_cast<double>(sorted.size() - 1))]; };
    std::printf("%-20s %zu configurations, %zu evaluations: start %.2f ms, per proposal mean %.3f ms, p50 %.3f, p99 %.3f, max %.3f\n",
                name.c_str(), space.size(), sorted.size(), start_ms, mean, at(0.5), at(0.99), sorted.back());
    json << (first ? "" : ", ") << "\"" << name << "\": {\"start_ms\": " << start_ms << ", \"mean_ms\": " << mean
         << ", \"p50_ms\": " << at(0.5) << ", \"p99_ms\": " << at(0.99) << ", \"max_ms\": " << sorted.back()
         << ", \"last_100_mean_ms\": ";
    double tail = 0.0;
    for (std::size_t i = sorted.size() > 100 ? milliseconds.size() - 100 : 0; i < milliseconds.size(); ++i)
      tail += milliseconds[i] / 100.0;
    json << tail << "}";
    first = false;
  }
  json << "}}\n";
  if (!json_path.empty()) std::ofstream(json_path) << json.str();
  return 0;
}
