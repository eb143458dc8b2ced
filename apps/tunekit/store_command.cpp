// tunekit store import FILE [--format auto|kt|t4] [--kernel NAME] [--device NAME] [--architecture ARCH]
//                           [--driver VERSION] [--source-hash HASH] [--problem-size SIZE] [--store DB]
// tunekit store export --kernel NAME [--device NAME] [--architecture ARCH] [--driver VERSION]
//                      [--source-hash HASH] [--problem-size SIZE] [--format kt|t4] --output FILE [--force] [--store DB]
// tunekit store list [--store DB] [--json]
// tunekit store check [--store DB]
//
// The store is --store, else $TUNEKIT_STORE, else $XDG_DATA_HOME/tunekit/tunekit.db,
// else ~/.local/share/tunekit/tunekit.db.
#include <fmt/format.h>
#include <fmt/ostream.h>

#include <algorithm>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "commands.hpp"
#include "parameter_json.hpp"
#include "tunekit/error.hpp"
#include "tunekit/store.hpp"

namespace tunekit::app {

namespace {

using json = nlohmann::ordered_json;

struct identity_options {
  std::optional<std::string> kernel;
  std::optional<std::string> device;
  std::optional<std::string> architecture;
  std::optional<std::string> driver;
  std::optional<std::string> source_hash;
  std::optional<std::string> problem_size;
};

struct store_options {
  std::string store;
  std::string file;
  std::string format = "auto";
  std::string output;
  bool force = false;
  bool json = false;
  identity_options identity;
};

std::filesystem::path store_path(const store_options& options) {
  return options.store.empty() ? default_store_path() : std::filesystem::path(options.store);
}

void add_store_option(CLI::App* command, store_options& options) {
  command->add_option("--store", options.store,
                      "Results store file (default: $TUNEKIT_STORE, else $XDG_DATA_HOME/tunekit/tunekit.db, else "
                      "~/.local/share/tunekit/tunekit.db)");
}

void add_identity_options(CLI::App* command, identity_options& identity, bool importing) {
  command->add_option("--kernel", identity.kernel,
                      importing ? "Kernel name (a T4 file names none; overrides a Kernel Tuner file's)" : "Kernel name");
  command->add_option("--device", identity.device,
                      importing ? "Device name (a T4 file names none; overrides a Kernel Tuner file's)" : "Device name");
  command->add_option("--architecture", identity.architecture, "Device architecture, e.g. sm_90");
  command->add_option("--driver", identity.driver, "Driver version");
  command->add_option("--source-hash", identity.source_hash, "Hash of the kernel's source and compile options");
  command->add_option("--problem-size", identity.problem_size,
                      importing ? "Problem size (default: the file's, as JSON)" : "Problem size, as `store list` shows it");
}

std::string configuration_text(const stored_configuration& configuration) {
  std::string text;
  for (const auto& [name, value] : configuration) {
    if (!text.empty()) text += ", ";
    text += name + "=" + to_string(value);
  }
  return text;
}

int run_import(const store_options& options, std::ostream& out) {
  std::optional<results_format> format;
  if (options.format != "auto") format = parse_results_format(options.format);
  const import_identity identity{options.identity.device,      options.identity.architecture,
                                 options.identity.driver,      options.identity.kernel,
                                 options.identity.source_hash, options.identity.problem_size};
  // The file is read and checked completely before the store is touched.
  const auto file = results_file::read(options.file, format, identity);
  auto store = results_store::open(store_path(options));
  const auto summary = import_results(store, file);
  fmt::print(out, "imported {} results ({}) of {} into {}: {} added, {} already present\n", summary.results,
             to_string(summary.format), to_string(summary.key), store.path().string(), summary.added,
             summary.already_present);
  return 0;
}

bool matches(const std::optional<std::string>& wanted, const std::string& actual) { return !wanted || *wanted == actual; }

store_key choose_problem(const results_store& store, const identity_options& identity) {
  std::vector<store_key> candidates;
  for (const auto& problem : store.problems()) {
    const auto& key = problem.key;
    if (matches(identity.kernel, key.kernel.name) && matches(identity.device, key.device.name) &&
        matches(identity.architecture, key.device.architecture) && matches(identity.driver, key.device.driver) &&
        matches(identity.source_hash, key.kernel.source_hash) && matches(identity.problem_size, key.problem_size))
      candidates.push_back(key);
  }
  if (candidates.empty())
    throw invalid_argument(fmt::format("results store '{}' has no results for kernel '{}'{}; `tunekit store list` shows "
                                       "what it holds",
                                       store.path().string(), identity.kernel.value_or(""),
                                       identity.device ? " on '" + *identity.device + "'" : std::string()));
  if (candidates.size() > 1) {
    std::string listed;
    for (const auto& key : candidates) {
      if (!listed.empty()) listed += "; ";
      listed += to_string(key);
    }
    throw invalid_argument(fmt::format("{} stored problems match: {}; choose one with --device, --architecture, --driver, "
                                       "--source-hash or --problem-size",
                                       candidates.size(), listed));
  }
  return candidates.front();
}

int run_export(const store_options& options, std::ostream& out) {
  const auto format = parse_results_format(options.format == "auto" ? "kt" : options.format);
  std::error_code failure;
  if (!options.force && std::filesystem::exists(options.output, failure))
    throw invalid_argument("'" + options.output + "' exists; pass --force to replace it");
  const auto store = results_store::open(store_path(options), store_access::read_only);
  const store_key key = choose_problem(store, options.identity);
  const std::string text = export_results(store, key, format);
  write_results_file(options.output, text, options.force);
  fmt::print(out, "exported {} results ({}) of {} to {}\n", store.count(key), to_string(format), to_string(key),
             options.output);
  return 0;
}

int run_list(const store_options& options, std::ostream& out) {
  const auto path = store_path(options);
  std::error_code failure;
  if (!std::filesystem::exists(path, failure)) {
    if (options.json)
      out << json{{"store", path.string()}, {"problems", json::array()}}.dump(2) << '\n';
    else
      fmt::print(out, "no results store at {} yet\n", path.string());
    return 0;
  }
  const auto store = results_store::open(path, store_access::read_only);
  const auto problems = store.problems();
  if (options.json) {
    json list = json::array();
    for (const auto& problem : problems) {
      json parameters = json::array();
      for (const auto& each : problem.parameters) parameters.push_back(each.name);
      json best = json::object();
      for (const auto& [name, value] : problem.best_configuration) best[name] = parameter_json(value);
      list.push_back(json{{"kernel", {{"name", problem.key.kernel.name}, {"source_hash", problem.key.kernel.source_hash}}},
                          {"device",
                           {{"name", problem.key.device.name},
                            {"architecture", problem.key.device.architecture},
                            {"driver", problem.key.device.driver}}},
                          {"problem_size", problem.key.problem_size},
                          {"objective", problem.objective},
                          {"parameters", parameters},
                          {"results", problem.results},
                          {"ok_results", problem.ok_results},
                          {"best_value", problem.best_value ? json(*problem.best_value) : json(nullptr)},
                          {"best_configuration", best},
                          {"first_recorded_at", problem.first_recorded_at},
                          {"last_recorded_at", problem.last_recorded_at}});
    }
    out << json{{"store", store.path().string()}, {"problems", list}}.dump(2) << '\n';
    return 0;
  }
  std::size_t total = 0;
  for (const auto& problem : problems) total += problem.results;
  fmt::print(out, "results store {}: {} problem{}, {} result{}\n", store.path().string(), problems.size(),
             problems.size() == 1 ? "" : "s", total, total == 1 ? "" : "s");
  if (problems.empty()) return 0;
  struct row {
    std::string kernel, device, problem_size, results, best;
  };
  std::vector<row> rows{{"kernel", "device", "problem size", "results (ok)", "best"}};
  const auto or_dash = [](const std::string& text) { return text.empty() ? std::string("-") : text; };
  for (const auto& problem : problems) {
    std::string kernel = problem.key.kernel.name;
    if (!problem.key.kernel.source_hash.empty()) kernel += " [" + problem.key.kernel.source_hash + "]";
    std::string device = problem.key.device.name;
    if (!problem.key.device.architecture.empty()) device += " " + problem.key.device.architecture;
    if (!problem.key.device.driver.empty()) device += " driver " + problem.key.device.driver;
    std::string best = "-";
    if (problem.best_value)
      best = fmt::format("{} {:.6g} ({})", problem.objective, *problem.best_value,
                         configuration_text(problem.best_configuration));
    rows.push_back({kernel, device, or_dash(problem.key.problem_size),
                    fmt::format("{} ({})", problem.results, problem.ok_results), best});
  }
  std::size_t widths[4] = {0, 0, 0, 0};
  for (const auto& each : rows) {
    widths[0] = std::max(widths[0], each.kernel.size());
    widths[1] = std::max(widths[1], each.device.size());
    widths[2] = std::max(widths[2], each.problem_size.size());
    widths[3] = std::max(widths[3], each.results.size());
  }
  for (const auto& each : rows)
    fmt::print(out, "  {:<{}}  {:<{}}  {:<{}}  {:>{}}  {}\n", each.kernel, widths[0], each.device, widths[1],
               each.problem_size, widths[2], each.results, widths[3], each.best);
  return 0;
}

int run_check(const store_options& options, std::ostream& out) {
  const auto store = results_store::open(store_path(options), store_access::read_only);
  store.check();
  fmt::print(out, "results store {} is intact: {} results\n", store.path().string(), store.count());
  return 0;
}

}  // namespace

void add_store_command(CLI::App& app, command_action& action, std::ostream& out) {
  auto options = std::make_shared<store_options>();
  auto* store = app.add_subcommand(
      "store",
      "The results store: every measured configuration, written as it arrives (SQLite, WAL). Import and export "
      "Kernel Tuner cache files and T4 results files exactly");
  store->require_subcommand(1);

  auto* import = store->add_subcommand(
      "import", "Add a Kernel Tuner cache file or a T4 results file (.json or .json.gz) to the store; results the "
                "store already has are kept");
  import->add_option("FILE", options->file, "The file to import")->required();
  import->add_option("--format", options->format, "auto (default), kt or t4")
      ->check(CLI::IsMember({"auto", "kt", "t4"}));
  add_identity_options(import, options->identity, true);
  add_store_option(import, *options);
  import->callback([options, &action, &out] { action = [options, &out] { return run_import(*options, out); }; });

  auto* export_command = store->add_subcommand(
      "export", "Write one kernel's results as a Kernel Tuner cache file or a T4 results file (gzip when FILE ends in .gz)");
  add_identity_options(export_command, options->identity, false);
  export_command->get_option("--kernel")->required();
  export_command->add_option("--format", options->format, "kt (default) or t4")->check(CLI::IsMember({"kt", "t4"}));
  export_command->add_option("--output,-o", options->output, "The file to write")->required();
  export_command->add_flag("--force", options->force, "Replace an existing output file");
  add_store_option(export_command, *options);
  export_command->callback([options, &action, &out] { action = [options, &out] { return run_export(*options, out); }; });

  auto* list = store->add_subcommand("list", "What the store holds: each kernel, device and problem size, its result "
                                             "count and best configuration");
  list->add_flag("--json", options->json, "Print one JSON object");
  add_store_option(list, *options);
  list->callback([options, &action, &out] { action = [options, &out] { return run_list(*options, out); }; });

  auto* check = store->add_subcommand("check", "Read every page of the store and report corruption");
  add_store_option(check, *options);
  check->callback([options, &action, &out] { action = [options, &out] { return run_check(*options, out); }; });
}

}  // namespace tunekit::app
