#include "tunekit/expression.hpp"

#include <muParser.h>

#include <algorithm>
#include <cmath>

#include "tunekit/error.hpp"

namespace tunekit {

variable_table::variable_table(std::initializer_list<std::pair<std::string, double>> initial) {
  for (const auto& [name, value] : initial) add(name, value);
}

std::size_t variable_table::add(std::string_view name, double value) {
  if (const auto slot = find(name); slot != npos) {
    *slots_[slot] = value;
    return slot;
  }
  names_.emplace_back(name);
  slots_.push_back(std::make_unique<double>(value));
  return names_.size() - 1;
}

std::size_t variable_table::find(std::string_view name) const {
  const auto it = std::find(names_.begin(), names_.end(), name);
  return it == names_.end() ? npos : static_cast<std::size_t>(it - names_.begin());
}

void variable_table::set(std::string_view name, double value) {
  const auto slot = find(name);
  if (slot == npos) throw invalid_argument("unknown variable '" + std::string(name) + "'");
  *slots_[slot] = value;
}

namespace {
double modulo(double a, double b) { return std::fmod(a, b); }
double logical_not(double a) { return a == 0.0 ? 1.0 : 0.0; }
double floor_of(double a) { return std::floor(a); }
double ceil_of(double a) { return std::ceil(a); }
}  // namespace

struct expression::engine {
  mu::Parser parser;
};

expression::expression(std::string text, const variable_table& variables)
    : text_(std::move(text)), engine_(std::make_unique<engine>()) {
  auto& parser = engine_->parser;
  try {
    parser.DefineOprt("%", modulo, mu::prMUL_DIV, mu::oaLEFT, true);
    parser.DefineInfixOprt("!", logical_not);
    parser.DefineFun("floor", floor_of);
    parser.DefineFun("ceil", ceil_of);
    for (std::size_t slot = 0; slot < variables.size(); ++slot)
      parser.DefineVar(variables.name(slot), variables.address(slot));
    parser.SetExpr(text_);
    // GetUsedVar parses the expression, so syntax errors and unknown names
    // surface here rather than at the first evaluation.
    for (const auto& [name, address] : parser.GetUsedVar()) {
      (void)address;
      used_slots_.push_back(variables.find(name));
    }
    std::sort(used_slots_.begin(), used_slots_.end());
    (void)parser.Eval();
  } catch (const mu::Parser::exception_type& error) {
    throw invalid_argument("expression '" + text_ + "': " + error.GetMsg());
  }
}

expression::expression(expression&&) noexcept = default;
expression& expression::operator=(expression&&) noexcept = default;
expression::~expression() = default;

double expression::evaluate() const { return engine_->parser.Eval(); }

}  // namespace tunekit
