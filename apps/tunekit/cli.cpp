#include "cli.hpp"

#include <exception>
#include <ostream>
#include <string>

#include "commands.hpp"
#include "tunekit/error.hpp"

namespace tunekit::app {

namespace {

// Every error the user sees is one line, whatever the exception carried.
std::string one_line(std::string text) {
  for (char& c : text)
    if (c == '\n' || c == '\r') c = ' ';
  while (!text.empty() && text.back() == ' ') text.pop_back();
  return text;
}

int report(std::ostream& err, const std::string& message, int code) {
  err << "tunekit: error: " << one_line(message) << '\n';
  return code;
}

}  // namespace

int run(int argc, const char* const* argv, std::ostream& out, std::ostream& err) {
  CLI::App app{"tunekit: makes CUDA kernels run near the hardware limit on the GPU they land on",
               "tunekit"};
  app.set_version_flag("--version", TUNEKIT_VERSION);
  app.require_subcommand(1);
  command_action action;
  add_bench_command(app, action, out);
  add_ceilings_command(app, action, out);
  add_compare_command(app, action, out);
  add_devices_command(app, action, out);
  add_export_header_command(app, action, out);
  add_occupancy_command(app, action, out);
  add_profile_command(app, action, out);
  add_replay_command(app, action, out);
  add_store_command(app, action, out);
  add_tune_command(app, action, out);
  add_workload_command(app, action, out);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    out << app.help();
    return success;
  } catch (const CLI::CallForAllHelp&) {
    out << app.help("", CLI::AppFormatMode::All);
    return success;
  } catch (const CLI::CallForVersion&) {
    out << TUNEKIT_VERSION << '\n';
    return success;
  } catch (const CLI::ParseError& error) {
    return report(err, error.what(), bad_input);
  }

  try {
    return action ? action() : bad_input;
  } catch (const tunekit::invalid_argument& error) {
    return report(err, error.what(), bad_input);
  } catch (const CLI::ParseError& error) {
    return report(err, error.what(), bad_input);
  } catch (const std::exception& error) {
    return report(err, error.what(), failure);
  }
}

}  // namespace tunekit::app
