#include "tunekit/evaluation.hpp"

namespace tunekit {

std::string_view to_string(evaluation_status status) {
  switch (status) {
    case evaluation_status::ok: return "ok";
    case evaluation_status::compile_error: return "compile_error";
    case evaluation_status::resources: return "resources";
    case evaluation_status::launch_error: return "launch_error";
    case evaluation_status::device_fault: return "device_fault";
    case evaluation_status::timeout: return "timeout";
    case evaluation_status::wrong_result: return "wrong_result";
    case evaluation_status::invalid_output: return "invalid_output";
  }
  return "unknown";
}

std::optional<evaluation_status> parse_evaluation_status(std::string_view text) {
  for (int each = 0; each <= static_cast<int>(evaluation_status::invalid_output); ++each) {
    const auto status = static_cast<evaluation_status>(each);
    if (to_string(status) == text) return status;
  }
  return std::nullopt;
}

}  // namespace tunekit
