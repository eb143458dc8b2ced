#pragma once
// Internal to the CLI: each subcommand registers its options on the parser and,
// when chosen, leaves the work to do in `action`.

#include <CLI/CLI.hpp>

#include <functional>
#include <iosfwd>

namespace tunekit::app {

/// The chosen command's work; returns the exit code.
using command_action = std::function<int()>;

void add_ceilings_command(CLI::App& app, command_action& action, std::ostream& out);
void add_compare_command(CLI::App& app, command_action& action, std::ostream& out);
void add_devices_command(CLI::App& app, command_action& action, std::ostream& out);
void add_occupancy_command(CLI::App& app, command_action& action, std::ostream& out);
void add_replay_command(CLI::App& app, command_action& action, std::ostream& out);
void add_store_command(CLI::App& app, command_action& action, std::ostream& out);
void add_tune_command(CLI::App& app, command_action& action, std::ostream& out);

}  // namespace tunekit::app
