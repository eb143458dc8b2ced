// tunekit export-header [--store DB] [--kernel NAME] [--namespace NAME] [--output FILE [--force]]
//
// Writes the store's tuned configurations as a self-contained C++17 header:
// per device and kernel the tuned problem sizes, their best configurations and
// an inline lookup(), so an application needs no store at run time. Sorted,
// so it can be committed and diffed. Standard output unless --output.
#include <fmt/format.h>
#include <fmt/ostream.h>

#include <filesystem>
#include <memory>
#include <ostream>
#include <string>

#include "commands.hpp"
#include "tunekit/dispatch.hpp"
#include "tunekit/error.hpp"
#include "tunekit/store.hpp"

namespace tunekit::app {

namespace {

struct export_header_options {
  std::string store;
  std::string kernel;
  std::string namespace_name = "tunekit_tuned";
  std::string output;
  bool force = false;
};

int run_export_header(const export_header_options& options, std::ostream& out) {
  const auto path = options.store.empty() ? default_store_path() : std::filesystem::path(options.store);
  std::error_code failure;
  if (!options.output.empty() && !options.force && std::filesystem::exists(options.output, failure))
    throw invalid_argument("'" + options.output + "' exists; pass --force to replace it");
  const auto tuned = dispatcher::open(path, options.kernel);
  if (tuned.empty())
    throw invalid_argument(fmt::format(
        "results store '{}' has no tuned configuration{} (ok results with a time objective and a problem size "
        "given by name); `tunekit store list` shows what it holds",
        path.string(), options.kernel.empty() ? std::string() : " for kernel '" + options.kernel + "'"));
  // The command line noted in the header leaves out paths: the same store gives the same bytes anywhere.
  std::string command = "tunekit export-header";
  if (!options.kernel.empty()) command += " --kernel " + options.kernel;
  if (options.namespace_name != "tunekit_tuned") command += " --namespace " + options.namespace_name;
  const std::string text = export_header(tuned, {options.namespace_name, command});
  if (options.output.empty()) {
    out << text;
    return 0;
  }
  write_results_file(options.output, text, options.force);
  std::size_t configurations = 0;
  for (const auto& table : tuned.tables()) configurations += table.entries.size();
  fmt::print(out, "wrote {} tuned configuration{} ({} device and kernel table{}) to {}\n", configurations,
             configurations == 1 ? "" : "s", tuned.tables().size(), tuned.tables().size() == 1 ? "" : "s",
             options.output);
  return 0;
}

}  // namespace

void add_export_header_command(CLI::App& app, command_action& action, std::ostream& out) {
  auto options = std::make_shared<export_header_options>();
  auto* command = app.add_subcommand(
      "export-header",
      "Write the store's best configurations as a self-contained C++17 header: per device and kernel the tuned "
      "problem sizes and an inline lookup() (exact, else nearest problem size, else nullptr)");
  command->add_option("--store", options->store,
                      "Results store file (default: $TUNEKIT_STORE, else $XDG_DATA_HOME/tunekit/tunekit.db, else "
                      "~/.local/share/tunekit/tunekit.db)");
  command->add_option("--kernel", options->kernel, "Only this kernel (default: every tuned kernel)");
  command->add_option("--namespace", options->namespace_name,
                      "C++ namespace of the header's types and tables (default: tunekit_tuned)");
  command->add_option("--output,-o", options->output, "The header to write (default: standard output)");
  command->add_flag("--force", options->force, "Replace an existing output file");
  command->callback([options, &action, &out] { action = [options, &out] { return run_export_header(*options, out); }; });
}

}  // namespace tunekit::app
