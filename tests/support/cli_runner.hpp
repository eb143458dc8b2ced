#pragma once
// Drives the CLI in process, for the tests of every command.

#include <gtest/gtest.h>

#include <algorithm>
#include <sstream>
#include <string>
#include <vector>

#include "cli.hpp"

namespace tunekit::testing {

struct cli_outcome {
  int code = -1;
  std::string out;
  std::string err;
};

/// `tunekit ARGUMENTS...`, its exit code and what it wrote.
inline cli_outcome run_cli(std::vector<std::string> arguments) {
  arguments.insert(arguments.begin(), "tunekit");
  std::vector<const char*> argv;
  for (const auto& argument : arguments) argv.push_back(argument.c_str());
  std::ostringstream out;
  std::ostringstream err;
  cli_outcome result;
  result.code = tunekit::app::run(static_cast<int>(argv.size()), argv.data(), out, err);
  result.out = out.str();
  result.err = err.str();
  return result;
}

inline int count_lines(const std::string& text) {
  return static_cast<int>(std::count(text.begin(), text.end(), '\n'));
}

/// A bad-input answer: exit 2, nothing on stdout, exactly one error line on stderr.
inline void expect_bad_input(const std::vector<std::string>& arguments) {
  const auto result = run_cli(arguments);
  std::string shown;
  for (const auto& each : arguments) shown += each + " ";
  EXPECT_EQ(result.code, 2) << shown << "\n" << result.err << result.out;
  EXPECT_EQ(count_lines(result.err), 1) << shown << "\n" << result.err;
  EXPECT_NE(result.err.find("tunekit: error: "), std::string::npos) << shown;
  EXPECT_TRUE(result.out.empty()) << shown << "\n" << result.out;
}

}  // namespace tunekit::testing
