#pragma once
// A parameter value as JSON, its own type kept: shared by the commands that print configurations.

#include <nlohmann/json.hpp>

#include "tunekit/search_space.hpp"

namespace tunekit::app {

inline nlohmann::ordered_json parameter_json(const parameter_value& value) {
  if (const auto* integer = std::get_if<std::int64_t>(&value)) return *integer;
  if (const auto* real = std::get_if<double>(&value)) return *real;
  return std::get<std::string>(value);
}

}  // namespace tunekit::app
