// tunekit compare BASE.json NEW.json [--threshold FRACTION] [--json]
//
// Compares two result files result by result (matched on name and params):
// a table sorted by change, most slowed first, with a noise-aware verdict per
// pair. Exit 1 when any pair is SLOWER, 0 otherwise, 2 on bad input.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli.hpp"
#include "commands.hpp"
#include "tunekit/error.hpp"
#include "tunekit/measure/results.hpp"

namespace tunekit::app {

namespace {

using json = nlohmann::ordered_json;

struct compare_options {
  std::string base;
  std::string current;
  double threshold = measure::compare_options{}.threshold;
  bool json = false;
};

json number_or_null(double value) { return std::isfinite(value) ? json(value) : json(nullptr); }

json statistics_json(const measure::summary& stats) {
  return json{{"count", stats.count},         {"median_us", stats.median}, {"mean_us", stats.mean},
              {"stddev_us", stats.stddev},    {"cv", stats.cv},            {"min_us", stats.min},
              {"max_us", stats.max},          {"p99_us", stats.p99}};
}

json unmatched_json(const std::vector<measure::unmatched_result>& results) {
  json list = json::array();
  for (const auto& each : results) list.push_back(json{{"name", each.name}, {"params", json::parse(each.params)}});
  return list;
}

std::string change_text(double change) {
  return std::isfinite(change) ? fmt::format("{:+.2f}%", 100.0 * change) : std::string("+inf");
}

void print_table(const measure::comparison& result, std::ostream& out) {
  std::vector<std::vector<std::string>> rows;
  rows.push_back({"name", "params", "base median (us)", "new median (us)", "change", "p-value", "verdict"});
  for (const auto& pair : result.pairs)
    rows.push_back({pair.name, pair.params, fmt::format("{:.3f}", pair.base.median),
                    fmt::format("{:.3f}", pair.current.median), change_text(pair.change),
                    fmt::format("{:.2g}", pair.p_value), std::string(measure::to_string(pair.outcome))});
  std::vector<std::size_t> widths(rows.front().size(), 0);
  for (const auto& row : rows)
    for (std::size_t c = 0; c < row.size(); ++c) widths[c] = std::max(widths[c], row[c].size());
  for (const auto& row : rows) {
    std::string line;
    for (std::size_t c = 0; c < row.size(); ++c) {
      // Text columns align left, numbers right; the verdict ends the line.
      if (c < 2 || c + 1 == row.size())
        line += fmt::format("{:<{}}", row[c], c + 1 == row.size() ? 0 : widths[c]);
      else
        line += fmt::format("{:>{}}", row[c], widths[c]);
      if (c + 1 < row.size()) line += "  ";
    }
    out << line << '\n';
  }
  for (const auto& each : result.only_in_base) out << fmt::format("only in base: {} {}\n", each.name, each.params);
  for (const auto& each : result.only_in_new) out << fmt::format("only in new: {} {}\n", each.name, each.params);
}

int run_compare(const compare_options& options, std::ostream& out) {
  if (!(options.threshold > 0.0 && options.threshold < 1.0))
    throw invalid_argument(fmt::format("--threshold must be a fraction in (0, 1), got {}", options.threshold));
  const measure::result_file base = measure::read_result_file(options.base);
  const measure::result_file current = measure::read_result_file(options.current);
  measure::compare_options settings;
  settings.threshold = options.threshold;
  measure::comparison result;
  try {
    result = measure::compare(base, current, settings);
  } catch (const invalid_argument& error) {
    throw invalid_argument(fmt::format("comparing '{}' with '{}': {}", options.base, options.current, error.what()));
  }
  if (result.pairs.empty())
    throw invalid_argument(fmt::format("no result of '{}' matches one of '{}' by name and params ({} and {} results)",
                                       options.base, options.current, base.results.size(), current.results.size()));

  std::size_t counts[4] = {0, 0, 0, 0};
  for (const auto& pair : result.pairs) ++counts[static_cast<int>(pair.outcome)];
  const std::size_t slower = counts[static_cast<int>(measure::verdict::slower)];

  if (options.json) {
    json pairs = json::array();
    for (const auto& pair : result.pairs)
      pairs.push_back(json{{"name", pair.name},
                           {"params", json::parse(pair.params)},
                           {"base", statistics_json(pair.base)},
                           {"new", statistics_json(pair.current)},
                           {"change", number_or_null(pair.change)},
                           {"p_value", pair.p_value},
                           {"p_slower", pair.p_slower},
                           {"p_faster", pair.p_faster},
                           {"verdict", std::string(measure::to_string(pair.outcome))}});
    json counts_json = json::object();
    for (auto each : {measure::verdict::slower, measure::verdict::faster, measure::verdict::same,
                      measure::verdict::unsure})
      counts_json[std::string(measure::to_string(each))] = counts[static_cast<int>(each)];
    out << json{{"base", options.base},
                {"new", options.current},
                {"threshold", settings.threshold},
                {"alpha", settings.alpha},
                {"equivalence_alpha", settings.equivalence_alpha},
                {"pairs", std::move(pairs)},
                {"only_in_base", unmatched_json(result.only_in_base)},
                {"only_in_new", unmatched_json(result.only_in_new)},
                {"verdicts", std::move(counts_json)}}
               .dump(2)
        << '\n';
  } else {
    print_table(result, out);
    out << fmt::format("{} compared (threshold {:.1f}%): {} slower, {} faster, {} same, {} unsure\n",
                       result.pairs.size(), 100.0 * settings.threshold, slower,
                       counts[static_cast<int>(measure::verdict::faster)],
                       counts[static_cast<int>(measure::verdict::same)],
                       counts[static_cast<int>(measure::verdict::unsure)]);
  }
  return slower > 0 ? failure : success;
}

}  // namespace

void add_compare_command(CLI::App& app, command_action& action, std::ostream& out) {
  auto options = std::make_shared<compare_options>();
  auto* command = app.add_subcommand(
      "compare",
      "Compare two result files: per result (matched by name and params) SAME, FASTER, SLOWER or UNSURE, "
      "by the change of the median and a Mann-Whitney U test of the samples. Exit 1 if any is SLOWER");
  command->add_option("base", options->base, "Result file (JSON) of the baseline")->required();
  command->add_option("new", options->current, "Result file (JSON) to judge against it")->required();
  command->add_option("--threshold", options->threshold,
                      "Smallest relative change of the median that counts, a fraction in (0, 1) (default 0.02)");
  command->add_flag("--json", options->json, "Print one JSON object with every pair and the unmatched results");
  command->callback([options, &action, &out] { action = [options, &out] { return run_compare(*options, out); }; });
}

}  // namespace tunekit::app
