#pragma once
// Internal to the CLI: each subcommand registers its options on the parser and,
// when chosen, leaves the work to do in `action`.

#include <CLI/CLI.hpp>

#include <functional>
#include <iosfwd>
#include <string>
#include <utility>
#include <vector>

namespace tunekit::app {

/// "N" or "all" (every GPU here, counted without a CUDA context in this
/// process, which forks GPU workers later). Throws tunekit::invalid_argument.
[[nodiscard]] std::vector<int> parse_devices(const std::string& text);

/// "a=1,b=fast" -> {{"a", "1"}, {"b", "fast"}}. Throws tunekit::invalid_argument
/// naming `option` for an item that is not name=value.
[[nodiscard]] std::vector<std::pair<std::string, std::string>> parse_assignments(const std::string& text,
                                                                               const std::string& option);

/// The chosen command's work; returns the exit code.
using command_action = std::function<int()>;

void add_bench_command(CLI::App& app, command_action& action, std::ostream& out);
void add_ceilings_command(CLI::App& app, command_action& action, std::ostream& out);
void add_compare_command(CLI::App& app, command_action& action, std::ostream& out);
void add_devices_command(CLI::App& app, command_action& action, std::ostream& out);
void add_export_header_command(CLI::App& app, command_action& action, std::ostream& out);
void add_occupancy_command(CLI::App& app, command_action& action, std::ostream& out);
void add_profile_command(CLI::App& app, command_action& action, std::ostream& out);
void add_replay_command(CLI::App& app, command_action& action, std::ostream& out);
void add_store_command(CLI::App& app, command_action& action, std::ostream& out);
void add_tune_command(CLI::App& app, command_action& action, std::ostream& out);
void add_workload_command(CLI::App& app, command_action& action, std::ostream& out);

}  // namespace tunekit::app
