#pragma once
// The tunekit command line, as a function so tests can drive it in process.

#include <iosfwd>

namespace tunekit::app {

/// Exit codes of every command.
enum exit_code : int { success = 0, failure = 1, bad_input = 2 };

/// Parses argv, runs the command, writes to out/err, returns the exit code.
/// Never throws: bad input is one line on err and exit code 2.
int run(int argc, const char* const* argv, std::ostream& out, std::ostream& err);

}  // namespace tunekit::app
