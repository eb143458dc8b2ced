#pragma once
// Search spaces: named parameters with ordered values, constraints checked as
// soon as their parameters are bound, and a compact index of the valid
// configurations (one 64-bit mixed-radix code each, sorted).
//
//   tunekit::space_definition definition;
//   definition.parameters = {{"block_size_x", {32, 64, 128}}, {"block_size_y", {1, 2, 4, 8}}};
//   definition.constraints = {"block_size_x*block_size_y <= 256"};
//   auto space = tunekit::search_space::enumerate(definition);

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <variant>
#include <vector>

namespace tunekit {

/// One value of a tunable parameter.
using parameter_value = std::variant<std::int64_t, double, std::string>;

/// "64", "0.5", "true"; doubles in their shortest round-trip form.
[[nodiscard]] std::string to_string(const parameter_value& value);

struct parameter {
  std::string name;
  std::vector<parameter_value> values;  ///< in their given order; neighbours follow it

  /// The number a constraint sees: integers and doubles as themselves, a
  /// string as its position in `values`.
  [[nodiscard]] double numeric(std::size_t value_index) const;
};

/// A constraint written in C++: it reads the values of `parameters`, in order.
struct predicate_constraint {
  std::vector<std::string> parameters;
  std::function<bool(std::span<const double>)> check;
};

struct space_definition {
  std::vector<parameter> parameters;
  std::vector<std::string> constraints;          ///< expressions, see expression.hpp
  std::vector<predicate_constraint> predicates;  ///< C++ constraints
  std::map<std::string, double> constants;       ///< problem-size names usable in constraints
};

/// A configuration as the index of each parameter's chosen value.
struct configuration {
  std::vector<std::uint32_t> value_indices;
  bool operator==(const configuration&) const = default;
};

/// How strategies move: Hamming (any one parameter changed) or adjacent (one
/// parameter moved to a neighbouring value in its list).
enum class neighbourhood { hamming, adjacent };

class search_space {
 public:
  /// Enumerates the valid configurations depth-first, checking each
  /// constraint as soon as all of its parameters are bound. Throws
  /// tunekit::invalid_argument for empty parameter lists, duplicate names,
  /// bad expressions or names no parameter or constant defines.
  [[nodiscard]] static search_space enumerate(const space_definition& definition);

  /// A space of exactly the given configurations (a recorded space, for replay).
  [[nodiscard]] static search_space from_configurations(std::vector<parameter> parameters,
                                                        const std::vector<configuration>& configurations);

  [[nodiscard]] std::size_t size() const { return codes_.size(); }
  [[nodiscard]] bool empty() const { return codes_.empty(); }
  [[nodiscard]] const std::vector<parameter>& parameters() const { return parameters_; }
  /// Product of the value counts: the space before constraints.
  [[nodiscard]] double cartesian_size() const;

  [[nodiscard]] configuration at(std::size_t index) const;
  [[nodiscard]] std::uint32_t value_index(std::size_t index, std::size_t parameter) const {
    return static_cast<std::uint32_t>((codes_[index] / strides_[parameter]) % radices_[parameter]);
  }
  [[nodiscard]] std::optional<std::size_t> find(const configuration& config) const;
  [[nodiscard]] std::vector<std::size_t> neighbours(std::size_t index, neighbourhood kind) const;
  /// Coordinates in [0,1]: each parameter's value position / (count − 1).
  [[nodiscard]] std::vector<double> coordinates(std::size_t index) const;
  /// "block_size_x=64, block_size_y=4": every parameter, in order.
  [[nodiscard]] std::string describe(std::size_t index) const;

 private:
  search_space(std::vector<parameter> parameters);
  [[nodiscard]] std::optional<std::size_t> find_code(std::uint64_t code) const;

  std::vector<parameter> parameters_;
  std::vector<std::uint64_t> radices_;
  std::vector<std::uint64_t> strides_;
  std::vector<std::uint64_t> codes_;  ///< sorted ascending
};

}  // namespace tunekit
