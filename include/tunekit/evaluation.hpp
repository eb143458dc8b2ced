#pragma once
// The outcome of evaluating one configuration: a typed status, never a string
// match and never an exception that ends a session.

#include <optional>
#include <string_view>

namespace tunekit {

enum class evaluation_status {
  ok,
  compile_error,   ///< the variant did not compile
  resources,       ///< too many registers / too much shared memory / too many threads
  launch_error,    ///< the launch failed
  device_fault,    ///< illegal address or another sticky error
  timeout,         ///< the watchdog stopped a hung kernel
  wrong_result,    ///< output differs from the reference
  invalid_output,  ///< NaN or Inf in the output
};

/// "ok", "compile_error", "resources", ...
[[nodiscard]] std::string_view to_string(evaluation_status status);

/// The status to_string() names; nullopt for any other text.
[[nodiscard]] std::optional<evaluation_status> parse_evaluation_status(std::string_view text);

}  // namespace tunekit
