// Tuned configurations from a tunekit results store, written by
//   tunekit export-header --kernel conv2d
// Do not edit: regenerate it. Self-contained C++17 (standard headers only; no tunekit, no CUDA).
//
//   const tunekit_tuned::configuration* tuned =
//       tunekit_tuned::lookup(device_name, "kernel", {{"n", 4096}});
//   const long long tile = tuned != nullptr ? tuned->integer("TILE", 16) : 16;  // nullptr: your default
//
// lookup() matches the device by name and the problem size by its dimension names: the exact
// size, else the nearest (Euclidean distance over sign(v)*ln(1+|v|); on a tie the smaller
// problem, values compared in sorted-name order), else nullptr. Each table holds the most
// recently tuned kernel version only.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstring>
#include <initializer_list>

namespace tunekit_tuned {

enum class value_kind { integer, real, text };

/// One parameter of a tuned configuration.
struct parameter {
  const char* name;
  value_kind kind;
  long long integer;  ///< when kind is integer
  double real;        ///< when kind is real
  const char* text;   ///< when kind is text; "" otherwise
};

/// One tuned problem size and its best configuration.
struct configuration {
  const char* problem;           ///< the problem size it was tuned for, as JSON
  const double* problem_values;  ///< in its table's dimension order
  const parameter* parameters;   ///< in the kernel's parameter order
  std::size_t parameter_count;
  double time_ms;  ///< the best measured time

  const parameter* find(const char* name) const {
    for (std::size_t i = 0; i < parameter_count; ++i)
      if (std::strcmp(parameters[i].name, name) == 0) return &parameters[i];
    return nullptr;
  }
  /// An integer parameter's value, else `otherwise`.
  long long integer(const char* name, long long otherwise) const {
    const parameter* found = find(name);
    return found != nullptr && found->kind == value_kind::integer ? found->integer : otherwise;
  }
  /// A number parameter's value (an integer converted), else `otherwise`.
  double real(const char* name, double otherwise) const {
    const parameter* found = find(name);
    if (found == nullptr) return otherwise;
    if (found->kind == value_kind::real) return found->real;
    return found->kind == value_kind::integer ? static_cast<double>(found->integer) : otherwise;
  }
  /// A string parameter's value, else `otherwise`.
  const char* text(const char* name, const char* otherwise) const {
    const parameter* found = find(name);
    return found != nullptr && found->kind == value_kind::text ? found->text : otherwise;
  }
};

/// Every tuned problem size of one device and kernel with one set of dimension names.
struct table {
  const char* device;
  const char* kernel;
  const char* source_hash;        ///< the kernel version tuned
  const char* const* dimensions;  ///< sorted by name
  std::size_t dimension_count;
  const configuration* configurations;  ///< sorted by problem size, smallest first
  std::size_t configuration_count;
};

/// One dimension of a problem size.
struct dimension {
  const char* name;
  double value;
};

namespace detail {

// device "NVIDIA H200", kernel "conv2d", version "6fde6c93e35853e0"
inline constexpr const char* dimensions_0[] = {"filter_height", "filter_width", "image_height", "image_width"};
inline constexpr double problem_0_0[] = {17.0, 17.0, 4096.0, 4096.0};
inline constexpr parameter parameters_0_0[] = {
    {"block_size_x", value_kind::integer, 16LL, 0.0, ""},
    {"block_size_y", value_kind::integer, 16LL, 0.0, ""},
    {"read_only", value_kind::integer, 0LL, 0.0, ""},
    {"tile_size_x", value_kind::integer, 8LL, 0.0, ""},
    {"tile_size_y", value_kind::integer, 3LL, 0.0, ""},
    {"use_padding", value_kind::integer, 0LL, 0.0, ""},
};
inline constexpr configuration configurations_0[] = {
    {"{\"filter_height\":17,\"filter_width\":17,\"image_height\":4096,\"image_width\":4096}", problem_0_0, parameters_0_0, 6, 0.6113920288085938},
};

inline constexpr std::size_t max_dimensions = 4;
inline constexpr table tables[] = {
    {"NVIDIA H200", "conv2d", "6fde6c93e35853e0", dimensions_0, 4, configurations_0, 1},
};

inline double scaled(double value) { return std::copysign(std::log1p(std::fabs(value)), value); }

}  // namespace detail

/// The tuned configuration for `device` (by name, as the CUDA runtime reports
/// it), `kernel` and a problem size (names in any order): the exact problem
/// size, else the nearest, else nullptr. `exact`, when given, says which.
inline const configuration* lookup(const char* device, const char* kernel, const dimension* problem,
                                   std::size_t count, bool* exact = nullptr) {
  if (exact != nullptr) *exact = false;
  if (count > detail::max_dimensions) return nullptr;
  for (const table& each : detail::tables) {
    if (each.dimension_count != count || std::strcmp(each.device, device) != 0 || std::strcmp(each.kernel, kernel) != 0)
      continue;
    double values[detail::max_dimensions + 1] = {};
    std::size_t matched = 0;
    for (std::size_t d = 0; d < count; ++d)
      for (std::size_t i = 0; i < count; ++i)
        if (std::strcmp(problem[i].name, each.dimensions[d]) == 0) {
          values[d] = problem[i].value;
          ++matched;
          break;
        }
    if (matched != count) continue;
    const configuration* best = nullptr;
    double best_distance = 0.0;
    for (std::size_t c = 0; c < each.configuration_count; ++c) {
      const configuration& candidate = each.configurations[c];
      bool same = true;
      double distance = 0.0;
      for (std::size_t d = 0; d < count; ++d) {
        if (candidate.problem_values[d] != values[d]) same = false;
        const double difference = detail::scaled(values[d]) - detail::scaled(candidate.problem_values[d]);
        distance += difference * difference;
      }
      if (same) {
        if (exact != nullptr) *exact = true;
        return &candidate;
      }
      if (best == nullptr || distance < best_distance) {
        best = &candidate;
        best_distance = distance;
      }
    }
    return best;
  }
  return nullptr;
}

/// lookup(device, kernel, {{"n", 4096}}).
inline const configuration* lookup(const char* device, const char* kernel, std::initializer_list<dimension> problem,
                                   bool* exact = nullptr) {
  return lookup(device, kernel, problem.begin(), problem.size(), exact);
}

}  // namespace tunekit_tuned
