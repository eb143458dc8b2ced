#include "tunekit/search_space.hpp"

#include <algorithm>
#include <charconv>
#include <limits>
#include <set>

#include "tunekit/error.hpp"
#include "tunekit/expression.hpp"

namespace tunekit {

std::string to_string(const parameter_value& value) {
  if (const auto* integer = std::get_if<std::int64_t>(&value)) return std::to_string(*integer);
  if (const auto* real = std::get_if<double>(&value)) {
    char buffer[32];
    const auto [end, error] = std::to_chars(buffer, buffer + sizeof buffer, *real);
    (void)error;
    return std::string(buffer, end);
  }
  return std::get<std::string>(value);
}

double parameter::numeric(std::size_t value_index) const {
  const auto& value = values[value_index];
  if (const auto* integer = std::get_if<std::int64_t>(&value)) return static_cast<double>(*integer);
  if (const auto* real = std::get_if<double>(&value)) return *real;
  return static_cast<double>(value_index);
}

search_space::search_space(std::vector<parameter> parameters) : parameters_(std::move(parameters)) {
  if (parameters_.empty()) throw invalid_argument("a search space needs at least one parameter");
  std::set<std::string> names;
  std::uint64_t stride = 1;
  // The last parameter varies fastest, so code order is enumeration order.
  radices_.resize(parameters_.size());
  strides_.resize(parameters_.size());
  for (std::size_t p = parameters_.size(); p-- > 0;) {
    const auto& parameter = parameters_[p];
    if (parameter.name.empty()) throw invalid_argument("a parameter has no name");
    if (!names.insert(parameter.name).second) throw invalid_argument("parameter '" + parameter.name + "' is defined twice");
    if (parameter.values.empty()) throw invalid_argument("parameter '" + parameter.name + "' has no values");
    radices_[p] = parameter.values.size();
    strides_[p] = stride;
    if (stride > std::numeric_limits<std::uint64_t>::max() / radices_[p])
      throw invalid_argument("the search space has more than 2^64 combinations");
    stride *= radices_[p];
  }
}

double search_space::cartesian_size() const {
  double product = 1.0;
  for (auto radix : radices_) product *= static_cast<double>(radix);
  return product;
}

search_space search_space::enumerate(const space_definition& definition) {
  search_space space(definition.parameters);
  const std::size_t depth_count = space.parameters_.size();

  variable_table variables;
  for (const auto& parameter : space.parameters_) variables.add(parameter.name);
  for (const auto& [name, value] : definition.constants) {
    if (variables.find(name) != variable_table::npos)
      throw invalid_argument("'" + name + "' is both a parameter and a constant");
    variables.add(name, value);
  }

  // A constraint is checked at the depth of the last parameter it reads;
  // parameters occupy slots 0..depth_count-1, constants the slots after them.
  auto deepest_parameter = [depth_count](const std::vector<std::size_t>& slots) -> std::optional<std::size_t> {
    std::optional<std::size_t> deepest;
    for (auto slot : slots)
      if (slot < depth_count) deepest = std::max(deepest.value_or(0), slot);
    return deepest;
  };
  std::vector<expression> expressions;
  expressions.reserve(definition.constraints.size());
  std::vector<std::vector<const expression*>> expressions_at(depth_count);
  for (const auto& text : definition.constraints) expressions.emplace_back(text, variables);
  for (const auto& rule : expressions) {
    if (const auto depth = deepest_parameter(rule.used_slots()))
      expressions_at[*depth].push_back(&rule);
    else if (rule.evaluate() == 0.0)
      return space;  // reads only constants and is false: no configuration is valid
  }
  struct bound_predicate {
    const predicate_constraint* constraint;
    std::vector<std::size_t> slots;
  };
  std::vector<std::vector<bound_predicate>> predicates_at(depth_count);
  for (const auto& predicate : definition.predicates) {
    bound_predicate bound{&predicate, {}};
    for (const auto& name : predicate.parameters) {
      const auto slot = variables.find(name);
      if (slot == variable_table::npos) throw invalid_argument("a predicate reads unknown parameter '" + name + "'");
      bound.slots.push_back(slot);
    }
    predicates_at[deepest_parameter(bound.slots).value_or(0)].push_back(std::move(bound));
  }

  std::vector<double> predicate_arguments;
  auto passes = [&](std::size_t depth) {
    for (const auto* rule : expressions_at[depth])
      if (rule->evaluate() == 0.0) return false;
    for (const auto& bound : predicates_at[depth]) {
      predicate_arguments.clear();
      for (auto slot : bound.slots) predicate_arguments.push_back(variables.get(slot));
      if (!bound.constraint->check(predicate_arguments)) return false;
    }
    return true;
  };

  // Iterative depth-first walk; choice[d] is the value index tried at depth d.
  std::vector<std::uint32_t> choice(depth_count, 0);
  std::size_t depth = 0;
  std::uint64_t code = 0;
  for (;;) {
    if (choice[depth] < space.radices_[depth]) {
      variables.set(depth, space.parameters_[depth].numeric(choice[depth]));
      if (passes(depth)) {
        if (depth + 1 == depth_count) {
          space.codes_.push_back(code + choice[depth] * space.strides_[depth]);
          ++choice[depth];
        } else {
          code += choice[depth] * space.strides_[depth];
          ++depth;
          choice[depth] = 0;
        }
      } else {
        ++choice[depth];
      }
      continue;
    }
    if (depth == 0) break;
    --depth;
    code -= choice[depth] * space.strides_[depth];
    ++choice[depth];
  }
  space.codes_.shrink_to_fit();
  return space;
}

search_space search_space::from_configurations(std::vector<parameter> parameters,
                                               const std::vector<configuration>& configurations) {
  search_space space(std::move(parameters));
  space.codes_.reserve(configurations.size());
  for (const auto& config : configurations) {
    if (config.value_indices.size() != space.parameters_.size())
      throw invalid_argument("a configuration has " + std::to_string(config.value_indices.size()) +
                             " values for " + std::to_string(space.parameters_.size()) + " parameters");
    std::uint64_t code = 0;
    for (std::size_t p = 0; p < space.parameters_.size(); ++p) {
      if (config.value_indices[p] >= space.radices_[p]) throw invalid_argument("a configuration value is out of range");
      code += config.value_indices[p] * space.strides_[p];
    }
    space.codes_.push_back(code);
  }
  std::sort(space.codes_.begin(), space.codes_.end());
  space.codes_.erase(std::unique(space.codes_.begin(), space.codes_.end()), space.codes_.end());
  return space;
}

configuration search_space::at(std::size_t index) const {
  configuration config;
  config.value_indices.resize(parameters_.size());
  for (std::size_t p = 0; p < parameters_.size(); ++p) config.value_indices[p] = value_index(index, p);
  return config;
}

std::optional<std::size_t> search_space::find_code(std::uint64_t code) const {
  const auto it = std::lower_bound(codes_.begin(), codes_.end(), code);
  if (it == codes_.end() || *it != code) return std::nullopt;
  return static_cast<std::size_t>(it - codes_.begin());
}

std::optional<std::size_t> search_space::find(const configuration& config) const {
  if (config.value_indices.size() != parameters_.size()) return std::nullopt;
  std::uint64_t code = 0;
  for (std::size_t p = 0; p < parameters_.size(); ++p) {
    if (config.value_indices[p] >= radices_[p]) return std::nullopt;
    code += config.value_indices[p] * strides_[p];
  }
  return find_code(code);
}

std::vector<std::size_t> search_space::neighbours(std::size_t index, neighbourhood kind) const {
  std::vector<std::size_t> result;
  const std::uint64_t code = codes_[index];
  for (std::size_t p = 0; p < parameters_.size(); ++p) {
    const std::uint64_t current = value_index(index, p);
    const std::uint64_t base = code - current * strides_[p];
    auto consider = [&](std::uint64_t value) {
      if (const auto found = find_code(base + value * strides_[p])) result.push_back(*found);
    };
    if (kind == neighbourhood::adjacent) {
      if (current > 0) consider(current - 1);
      if (current + 1 < radices_[p]) consider(current + 1);
    } else {
      for (std::uint64_t value = 0; value < radices_[p]; ++value)
        if (value != current) consider(value);
    }
  }
  return result;
}

std::vector<double> search_space::coordinates(std::size_t index) const {
  std::vector<double> result(parameters_.size());
  for (std::size_t p = 0; p < parameters_.size(); ++p)
    result[p] = radices_[p] > 1 ? static_cast<double>(value_index(index, p)) / static_cast<double>(radices_[p] - 1) : 0.0;
  return result;
}

std::string search_space::describe(std::size_t index) const {
  std::string text;
  for (std::size_t p = 0; p < parameters_.size(); ++p) {
    if (p > 0) text += ", ";
    text += parameters_[p].name + "=" + to_string(parameters_[p].values[value_index(index, p)]);
  }
  return text;
}

}  // namespace tunekit
