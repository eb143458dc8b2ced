#include "commands.hpp"

namespace tunekit::app {

void add_compare_command(CLI::App& /*app*/, command_action& /*action*/, std::ostream& /*out*/) {}

}  // namespace tunekit::app
