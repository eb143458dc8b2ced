#pragma once
// Arithmetic/logical expressions over named numeric variables, for constraints
// and launch geometry. muparser is the engine (hidden behind a pimpl), with
// C-like operators added: % (fmod), ! (not), and floor/ceil next to its own
// min/max/abs/sqrt/… and && || == != < <= > >= ?:.
//
//   tunekit::variable_table names{{"MWG", 0.0}, {"MDIMC", 0.0}, {"VWM", 0.0}};
//   tunekit::expression rule("MWG % (MDIMC*VWM) == 0", names);
//   names.set("MWG", 64); names.set("MDIMC", 8); names.set("VWM", 2);
//   bool ok = rule.evaluate() != 0.0;

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tunekit {

/// Named double slots that expressions read. Slots never move once added, so
/// compiled expressions keep pointing at them.
class variable_table {
 public:
  variable_table() = default;
  variable_table(std::initializer_list<std::pair<std::string, double>> initial);
  variable_table(const variable_table&) = delete;
  variable_table& operator=(const variable_table&) = delete;

  /// Adds a variable (or returns the existing one's slot index).
  std::size_t add(std::string_view name, double value = 0.0);
  /// Slot index of a name, or npos.
  [[nodiscard]] std::size_t find(std::string_view name) const;
  void set(std::string_view name, double value);
  void set(std::size_t slot, double value) { *slots_[slot] = value; }
  [[nodiscard]] double get(std::size_t slot) const { return *slots_[slot]; }
  [[nodiscard]] const std::string& name(std::size_t slot) const { return names_[slot]; }
  [[nodiscard]] std::size_t size() const { return names_.size(); }
  [[nodiscard]] double* address(std::size_t slot) const { return slots_[slot].get(); }

  static constexpr std::size_t npos = static_cast<std::size_t>(-1);

 private:
  std::vector<std::string> names_;
  std::vector<std::unique_ptr<double>> slots_;
};

/// One compiled expression bound to a variable table.
/// Throws tunekit::invalid_argument, naming the expression, when it does not
/// parse or names a variable the table lacks.
class expression {
 public:
  expression(std::string text, const variable_table& variables);
  expression(expression&&) noexcept;
  expression& operator=(expression&&) noexcept;
  ~expression();

  [[nodiscard]] double evaluate() const;
  [[nodiscard]] const std::string& text() const { return text_; }
  /// Slot indices of the variables the expression reads, ascending.
  [[nodiscard]] const std::vector<std::size_t>& used_slots() const { return used_slots_; }

 private:
  struct engine;
  std::string text_;
  std::unique_ptr<engine> engine_;
  std::vector<std::size_t> used_slots_;
};

}  // namespace tunekit
