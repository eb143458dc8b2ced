#include "tunekit/profile.hpp"

#include <cmath>
#include <sstream>

#include <toml++/toml.h>

#include "tunekit/spec.hpp"

namespace tunekit::profile {

namespace {

[[noreturn]] void fail(const std::filesystem::path& file, const toml::source_region& where, const std::string& what) {
  throw spec_error(file.string() + ":" + std::to_string(where.begin.line) + ": " + what);
}

toml::table parse(const std::filesystem::path& file) {
  try {
    return toml::parse_file(file.string());
  } catch (const toml::parse_error& problem) {
    throw spec_error(file.string() + ":" + std::to_string(problem.source().begin.line) + ": not valid TOML: " +
                     std::string(problem.description()));
  }
}

std::string percent(double fraction) {
  std::ostringstream text;
  text.precision(fraction >= 0.1 ? 0 : 1);
  text << std::fixed << 100.0 * fraction << "%";
  return text.str();
}

std::string number(double value, int digits = 3) {
  std::ostringstream text;
  text.precision(digits);
  text << value;
  return text.str();
}

}  // namespace

std::vector<suite_entry> load_suite(const std::filesystem::path& manifest) {
  if (!std::filesystem::is_regular_file(manifest)) throw spec_error(manifest.string() + ": no such suite manifest");
  const auto root = parse(manifest);
  const auto* workloads = root["workload"].as_array();
  if (workloads == nullptr || workloads->empty()) fail(manifest, root.source(), "no [[workload]] entries");
  std::vector<suite_entry> suite;
  for (const auto& node : *workloads) {
    const auto* table = node.as_table();
    if (table == nullptr) fail(manifest, node.source(), "a [[workload]] must be a table");
    for (const auto& [key, value] : *table)
      if (key != "name" && key != "seed" && key != "large")
        fail(manifest, value.source(), "unknown key '" + std::string(key.str()) + "' (name, seed, large)");
    const auto name = (*table)["name"].value<std::string>();
    if (!name || name->empty()) fail(manifest, table->source(), "a [[workload]] needs a name");
    for (const char* size : {"seed", "large"}) {
      const auto* files = (*table)[size].as_array();
      if (files == nullptr) fail(manifest, table->source(), "workload '" + *name + "' needs " + size + " = [specs]");
      for (const auto& file : *files) {
        const auto path = file.value<std::string>();
        if (!path) fail(manifest, file.source(), "a spec must be a path");
        const auto spec = manifest.parent_path() / *path;
        if (!std::filesystem::is_regular_file(spec)) fail(manifest, file.source(), "spec '" + *path + "' not found");
        suite.push_back({*name, size, spec});
      }
    }
  }
  return suite;
}

std::map<std::string, double> load_budgets(const std::filesystem::path& file) {
  if (!std::filesystem::is_regular_file(file)) throw spec_error(file.string() + ": no such budget table");
  const auto root = parse(file);
  std::map<std::string, double> budgets;
  for (const auto& [key, value] : root)
    if (key != "budget_us") fail(file, value.source(), "unknown table '" + std::string(key.str()) + "' (budget_us)");
  const auto* table = root["budget_us"].as_table();
  if (table == nullptr) fail(file, root.source(), "missing [budget_us]");
  for (const auto& [key, value] : *table) {
    const auto budget = value.value<double>();
    if (!budget || !(*budget > 0.0) || !std::isfinite(*budget))
      fail(file, value.source(), "budget of '" + std::string(key.str()) + "' must be microseconds > 0");
    budgets[std::string(key.str())] = *budget;
  }
  return budgets;
}

assessment assess(const observation& observed, const thresholds& limits) {
  assessment out;
  const auto& s = observed.statistics;
  const auto say = [&](std::string text) { out.recommendations.push_back(std::move(text)); };
  if (observed.regression == "SLOWER") {
    out.flags.push_back("regressed");
    say("Regressed: the median is " + percent(observed.regression_change.value_or(0.0)) +
        " above the baseline's and the rank test says so; compare the configuration and the stored history.");
  }
  if (observed.budget_us && s.median > *observed.budget_us) {
    out.flags.push_back("slow");
    say("Over budget: median " + number(s.median) + " us against " + number(*observed.budget_us) + " us.");
  }
  if (s.cv > limits.max_cv) {
    out.flags.push_back("high_variance");
    say("Noisy: CV " + number(s.cv, 2) + " (above " + number(limits.max_cv, 2) +
        "); look at the clock and throttle telemetry and at other work on the GPU before trusting a comparison.");
  }
  if (s.mean > 0.0 && s.max > limits.outlier_ratio * s.mean) {
    out.flags.push_back("outliers");
    say("Outliers: max " + number(s.max) + " us is over " + number(limits.outlier_ratio, 2) + "x the mean " +
        number(s.mean) + " us; a tail-latency budget should use p99 (" + number(s.p99) + " us).");
  }
  const bool launch_bound = observed.launch_overhead_us && s.median < limits.launch_bound_ratio * *observed.launch_overhead_us;
  if (launch_bound) {
    out.flags.push_back("launch_bound");
    say("Launch-bound: median " + number(s.median) + " us is within " + number(limits.launch_bound_ratio, 2) +
        "x of an empty kernel's " + number(*observed.launch_overhead_us) +
        " us; batch more work per launch or capture the sequence in a CUDA graph.");
  }
  if (observed.rate && !launch_bound) {
    const auto memory = observed.rate->fraction_of_copy;
    const auto compute = observed.rate->fraction_of_flops;
    const double best = std::max(memory.value_or(0.0), compute.value_or(0.0));
    if (memory && *memory >= limits.at_limit)
      say("Memory-bound at " + percent(*memory) + " of the measured copy bandwidth: at the limit; only moving fewer bytes "
          "(fusion, narrower types) makes it faster.");
    else if (compute && *compute >= limits.at_limit)
      say("Compute-bound at " + percent(*compute) + " of the measured matrix-product rate: at the limit.");
    else if (memory || compute) {
      const std::string fractions = (memory ? percent(*memory) + " of copy bandwidth" : std::string()) +
                                    (memory && compute ? ", " : "") +
                                    (compute ? percent(*compute) + " of the matrix-product rate" : std::string());
      if (best < limits.far_from_limit)
        say("Room left: " + fractions + "; neither bytes nor arithmetic bound it, so look at latency, occupancy and "
            "divergence.");
      else
        say("Near a ceiling: " + fractions + "; what is left is latency and overhead: more work in flight per SM "
            "(occupancy, prefetching) or arithmetic overlapped with the memory traffic.");
    }
  }
  if (observed.local_bytes && *observed.local_bytes > 0.0)
    say("Spills " + number(*observed.local_bytes, 4) + " bytes per thread to local memory; smaller register tiles "
        "or __launch_bounds__ would keep them in registers.");
  if (!observed.occupancy_limiter.empty() && observed.occupancy && *observed.occupancy < 0.25 && !launch_bound) {
    std::string text = "Occupancy " + percent(*observed.occupancy) + ", limited by " + observed.occupancy_limiter;
    if (observed.occupancy_limiter == "registers" && observed.registers)
      text += " (" + number(*observed.registers, 4) + " per thread): fewer registers per thread or smaller blocks raise it";
    else if (observed.occupancy_limiter == "shared_memory")
      text += ": smaller tiles or fewer pipeline stages raise it";
    say(text + "; that matters only if the kernel waits on memory latency.");
  }
  if (observed.peer_us && *observed.peer_us < s.median)
    say("The peer is faster (" + number(*observed.peer_us) + " us against " + number(s.median) +
        " us): tune with a larger budget or add variants to the search space.");
  return out;
}

void write_markdown(std::ostream& out, const std::string& device, const std::vector<report_row>& rows) {
  out << "# tunekit profile on " << device << "\n\n";
  out << "| kernel | size | median (us) | p99 (us) | CV | throughput | of ceiling | peer (us) | speedup | flags |\n";
  out << "|---|---|---:|---:|---:|---:|---:|---:|---:|---|\n";
  for (const auto& row : rows) {
    const auto& o = row.observed;
    const auto& s = o.statistics;
    std::string throughput = "-";
    std::string ceiling = "-";
    if (o.rate) {
      const bool compute = o.rate->tflops >= 0.1 && o.rate->fraction_of_flops.value_or(0.0) >= o.rate->fraction_of_copy.value_or(0.0);
      throughput = compute ? number(o.rate->tflops, 3) + " TFLOP/s" : number(o.rate->gbps, 4) + " GB/s";
      const auto fraction = compute ? o.rate->fraction_of_flops : o.rate->fraction_of_copy;
      if (fraction) ceiling = percent(*fraction) + (compute ? " flops" : " copy");
    }
    std::string flags;
    for (const auto& flag : row.verdict.flags) flags += (flags.empty() ? "" : ", ") + flag;
    out << "| " << o.name << " | " << row.size << " | " << number(s.median, 4) << " | " << number(s.p99, 4) << " | "
        << number(s.cv, 2) << " | " << throughput << " | " << ceiling << " | "
        << (o.peer_us ? number(*o.peer_us, 4) : "-") << " | "
        << (o.peer_us ? number(*o.peer_us / s.median, 3) + "x" : "-") << " | " << (flags.empty() ? "-" : flags) << " |\n";
  }
  out << "\n";
  for (const auto& row : rows) {
    out << "## " << row.observed.name << (row.tuned_now ? " (tuned in this run)" : "") << "\n\n";
    out << "Configuration: " << (row.config.empty() ? "-" : row.config) << ". ";
    const auto& s = row.observed.statistics;
    out << "Mean " << number(s.mean, 4) << " us, stddev " << number(s.stddev, 3) << ", min " << number(s.min, 4)
        << ", max " << number(s.max, 4) << " over " << s.count << " runs.";
    if (!row.peer.empty()) out << " Peer: " << row.peer << ".";
    out << "\n\n";
    for (const auto& each : row.verdict.recommendations) out << "- " << each << "\n";
    if (row.verdict.recommendations.empty()) out << "- Nothing to recommend: no flag, no ceiling data against it.\n";
    out << "\n";
  }
}

}  // namespace tunekit::profile
