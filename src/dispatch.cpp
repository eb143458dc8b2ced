#include "tunekit/dispatch.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <tuple>

#include "tunekit/error.hpp"

namespace tunekit {

namespace {

using ordered_json = nlohmann::ordered_json;

// A store result as dispatch sees it: one tuned problem size of one version.
struct candidate {
  std::string architecture;
  std::string source_hash;
  std::string last_ok_recorded_at;
  std::vector<std::string> dimensions;  // sorted
  tuned_entry entry;
};

// The dimensions of a problem size text, sorted by name, with the values in
// that order; nullopt when it is not a JSON object of numbers.
std::optional<std::pair<std::vector<std::string>, std::vector<double>>> parse_problem(const std::string& text) {
  ordered_json object;
  try {
    object = ordered_json::parse(text);
  } catch (const nlohmann::json::exception&) {
    return std::nullopt;
  }
  if (!object.is_object()) return std::nullopt;
  std::map<std::string, double> sorted;
  for (const auto& [name, value] : object.items()) {
    if (!value.is_number()) return std::nullopt;
    sorted[name] = value.get<double>();
  }
  std::pair<std::vector<std::string>, std::vector<double>> parsed;
  for (const auto& [name, value] : sorted) {
    parsed.first.push_back(name);
    parsed.second.push_back(value);
  }
  return parsed;
}

// Log space that also takes zero and negative values: sizes compare by ratio.
double scaled(double value) { return std::copysign(std::log1p(std::fabs(value)), value); }

// Exactly the arithmetic of the generated header's lookup(), in the same
// order, so both pick the same entry.
const tuned_entry* nearest_entry(const dispatch_table& table, const std::vector<double>& values, bool& exact) {
  const tuned_entry* best = nullptr;
  double best_distance = 0.0;
  for (const auto& entry : table.entries) {
    bool same = true;
    double distance = 0.0;
    for (std::size_t d = 0; d < values.size(); ++d) {
      if (entry.values[d] != values[d]) same = false;
      const double difference = scaled(values[d]) - scaled(entry.values[d]);
      distance += difference * difference;
    }
    if (same) {
      exact = true;
      return &entry;
    }
    if (best == nullptr || distance < best_distance) {
      best = &entry;
      best_distance = distance;
    }
  }
  exact = false;
  return best;
}

std::string index_key(std::string_view device, std::string_view kernel, std::string_view architecture,
                      const std::vector<std::string>& dimensions) {
  // Length-prefixed, so no name can run into the next.
  std::string key;
  const auto add = [&key](std::string_view part) {
    key += std::to_string(part.size());
    key += ':';
    key += part;
  };
  add(device);
  add(kernel);
  add(architecture);
  for (const auto& each : dimensions) add(each);
  return key;
}

// The tables of one device name and kernel name from `candidates` (all of one
// architecture, or of every one): the newest version only, one entry per
// problem size (the fastest), one table per set of dimension names.
std::vector<dispatch_table> build_tables(const std::string& device, const std::string& kernel,
                                         const std::string& architecture, const std::vector<const candidate*>& candidates) {
  const candidate* newest = nullptr;
  for (const auto* each : candidates)
    if (newest == nullptr ||
        std::tie(each->last_ok_recorded_at, each->source_hash) > std::tie(newest->last_ok_recorded_at, newest->source_hash))
      newest = each;
  if (newest == nullptr) return {};
  std::map<std::vector<std::string>, dispatch_table> by_dimensions;
  for (const auto* each : candidates) {
    if (each->source_hash != newest->source_hash) continue;
    auto [slot, added] = by_dimensions.try_emplace(each->dimensions);
    dispatch_table& table = slot->second;
    if (added) table = {device, architecture, kernel, newest->source_hash, each->dimensions, {}};
    auto same = std::find_if(table.entries.begin(), table.entries.end(),
                             [&](const tuned_entry& entry) { return entry.values == each->entry.values; });
    if (same == table.entries.end()) table.entries.push_back(each->entry);
    else if (each->entry.time_ms < same->time_ms) *same = each->entry;
  }
  std::vector<dispatch_table> tables;
  for (auto& [dimensions, table] : by_dimensions) {
    std::sort(table.entries.begin(), table.entries.end(), [](const tuned_entry& a, const tuned_entry& b) {
      return std::tie(a.values, a.problem) < std::tie(b.values, b.problem);
    });
    tables.push_back(std::move(table));
  }
  return tables;
}

std::string problem_json(const problem_dimensions& problem) {
  ordered_json object = ordered_json::object();
  for (const auto& [name, value] : problem) {
    if (std::isfinite(value) && value == std::trunc(value) && std::fabs(value) < 9007199254740992.0)
      object[name] = static_cast<std::int64_t>(value);
    else
      object[name] = value;
  }
  return object.dump();
}

}  // namespace

std::string_view to_string(tuned_choice::source from) {
  switch (from) {
    case tuned_choice::source::exact: return "exact";
    case tuned_choice::source::nearest: return "nearest";
    case tuned_choice::source::fallback: return "fallback";
  }
  return "fallback";
}

dispatcher::dispatcher(const results_store& store, std::string_view kernel_name) {
  // Grouped by (device name, kernel name); the store's order keeps ties deterministic.
  std::map<std::pair<std::string, std::string>, std::vector<candidate>> groups;
  for (auto& tuned : store.tuned_problems(kernel_name)) {
    if (tuned.objective != "time") continue;  // "smallest is best" holds for times only
    auto parsed = parse_problem(tuned.key.problem_size);
    if (!parsed) continue;
    candidate each;
    each.architecture = tuned.key.device.architecture;
    each.source_hash = tuned.key.kernel.source_hash;
    each.last_ok_recorded_at = std::move(tuned.last_ok_recorded_at);
    each.dimensions = std::move(parsed->first);
    each.entry = {std::move(parsed->second), tuned.key.problem_size, std::move(tuned.best_configuration),
                  tuned.best_value};
    groups[{tuned.key.device.name, tuned.key.kernel.name}].push_back(std::move(each));
  }
  for (const auto& [names, candidates] : groups) {
    const auto& [device, kernel] = names;
    std::vector<const candidate*> all;
    std::set<std::string> architectures;
    for (const auto& each : candidates) {
      all.push_back(&each);
      architectures.insert(each.architecture);
    }
    for (auto& table : build_tables(device, kernel, {}, all)) tables_.push_back(std::move(table));
    if (architectures.size() < 2) continue;  // the table above is that architecture's
    for (const auto& architecture : architectures) {
      std::vector<const candidate*> of_architecture;
      for (const auto* each : all)
        if (each->architecture == architecture) of_architecture.push_back(each);
      for (auto& table : build_tables(device, kernel, architecture, of_architecture))
        architecture_tables_.push_back(std::move(table));
    }
  }
  const auto order = [](const dispatch_table& a, const dispatch_table& b) {
    return std::tie(a.device, a.kernel, a.dimensions, a.architecture) <
           std::tie(b.device, b.kernel, b.dimensions, b.architecture);
  };
  std::sort(tables_.begin(), tables_.end(), order);
  std::sort(architecture_tables_.begin(), architecture_tables_.end(), order);
  for (std::size_t i = 0; i < tables_.size(); ++i)
    index_.emplace(index_key(tables_[i].device, tables_[i].kernel, {}, tables_[i].dimensions), i);
  for (std::size_t i = 0; i < architecture_tables_.size(); ++i) {
    const auto& table = architecture_tables_[i];
    architecture_index_.emplace(index_key(table.device, table.kernel, table.architecture, table.dimensions), i);
  }
}

dispatcher dispatcher::open(const std::filesystem::path& path, std::string_view kernel_name) {
  const auto store = results_store::open(path, store_access::read_only);
  return dispatcher(store, kernel_name);
}

const dispatch_table* dispatcher::table_for(std::string_view device_name, std::string_view kernel_name,
                                            const std::vector<std::string>& dimensions,
                                            std::string_view architecture) const {
  if (!architecture.empty() && !architecture_index_.empty()) {
    const auto found = architecture_index_.find(index_key(device_name, kernel_name, architecture, dimensions));
    if (found != architecture_index_.end()) return &architecture_tables_[found->second];
  }
  const auto found = index_.find(index_key(device_name, kernel_name, {}, dimensions));
  return found != index_.end() ? &tables_[found->second] : nullptr;
}

std::optional<tuned_choice> dispatcher::find(std::string_view device_name, std::string_view kernel_name,
                                             const problem_dimensions& problem, std::string_view architecture) const {
  std::vector<std::pair<std::string, double>> sorted = problem;
  std::sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<std::string> dimensions;
  std::vector<double> values;
  for (const auto& [name, value] : sorted) {
    if (!dimensions.empty() && dimensions.back() == name)
      throw invalid_argument("problem size names dimension '" + name + "' twice");
    dimensions.push_back(name);
    values.push_back(value);
  }
  const dispatch_table* table = table_for(device_name, kernel_name, dimensions, architecture);
  if (table == nullptr) return std::nullopt;
  bool exact = false;
  const tuned_entry* entry = nearest_entry(*table, values, exact);
  if (entry == nullptr) return std::nullopt;
  return tuned_choice{entry->config, entry->time_ms, entry->problem, table->source_hash,
                      exact ? tuned_choice::source::exact : tuned_choice::source::nearest};
}

tuned_choice dispatcher::best(std::string_view device_name, std::string_view kernel_name,
                              const problem_dimensions& problem, const fallback_function& fallback,
                              std::string_view architecture) const {
  if (auto found = find(device_name, kernel_name, problem, architecture)) return std::move(*found);
  if (!fallback) throw invalid_argument("dispatch: no tuned configuration and no fallback given");
  return tuned_choice{fallback(), std::nullopt, problem_json(problem), {}, tuned_choice::source::fallback};
}

tuned_choice dispatcher::best(std::string_view device_name, std::string_view kernel_name,
                              const problem_dimensions& problem, stored_configuration fallback,
                              std::string_view architecture) const {
  if (auto found = find(device_name, kernel_name, problem, architecture)) return std::move(*found);
  return tuned_choice{std::move(fallback), std::nullopt, problem_json(problem), {}, tuned_choice::source::fallback};
}

// ---------------------------------------------------------------- header

namespace {

// A C++ string literal of any bytes: printable ASCII as itself (quote,
// backslash and question mark escaped), the rest as three-digit octal
// escapes, which unlike \x cannot swallow the next character.
std::string literal(std::string_view text) {
  std::string out = "\"";
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\' || c == '?') {  // '?': "??=" would read as a trigraph before C++17
      out += '\\';
      out += c;
    } else if (byte >= 0x20 && byte < 0x7f) {
      out += c;
    } else {
      out += '\\';
      out += static_cast<char>('0' + ((byte >> 6) & 7));
      out += static_cast<char>('0' + ((byte >> 3) & 7));
      out += static_cast<char>('0' + (byte & 7));
    }
  }
  out += '"';
  return out;
}

// The shortest text that reads back as the same double, always a floating literal.
std::string double_literal(double value) {
  if (!std::isfinite(value)) throw invalid_argument("cannot write a non-finite number into a header");
  char buffer[64];
  const auto [end, failure] = std::to_chars(buffer, buffer + sizeof buffer, value);
  if (failure != std::errc{}) throw error("cannot format a number");
  std::string text(buffer, end);
  if (text.find_first_of(".e") == std::string::npos) text += ".0";
  return text;
}

std::string integer_literal(std::int64_t value) {
  if (value == std::numeric_limits<std::int64_t>::min()) return "(-9223372036854775807LL - 1)";
  return std::to_string(value) + "LL";
}

bool is_identifier(std::string_view text) {
  if (text.empty() || (std::isdigit(static_cast<unsigned char>(text.front())) != 0)) return false;
  return std::all_of(text.begin(), text.end(),
                     [](char c) { return c == '_' || std::isalnum(static_cast<unsigned char>(c)) != 0; });
}

void check_namespace(const std::string& name) {
  std::string_view rest = name;
  while (true) {
    const auto separator = rest.find("::");
    if (!is_identifier(rest.substr(0, separator)))
      throw invalid_argument("namespace '" + name + "' is not a C++ namespace name");
    if (separator == std::string_view::npos) return;
    rest.remove_prefix(separator + 2);
  }
}

constexpr const char* header_types = R"(enum class value_kind { integer, real, text };

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
)";

constexpr const char* header_lookup = R"(/// The tuned configuration for `device` (by name, as the CUDA runtime reports
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
)";

}  // namespace

std::string export_header(const dispatcher& tuned, const header_options& options) {
  check_namespace(options.namespace_name);
  const auto& tables = tuned.tables();
  std::string out;
  out += "// Tuned configurations from a tunekit results store";
  if (!options.command.empty()) {
    out += ", written by\n//   ";
    for (const char c : options.command) out += (c == '\n' || c == '\r') ? ' ' : c;
    out += "\n";
  } else {
    out += ".\n";
  }
  out += "// Do not edit: regenerate it. Self-contained C++17 (standard headers only; no tunekit, no CUDA).\n"
         "//\n"
         "//   const " + options.namespace_name + "::configuration* tuned =\n"
         "//       " + options.namespace_name + "::lookup(device_name, \"kernel\", {{\"n\", 4096}});\n"
         "//   const long long tile = tuned != nullptr ? tuned->integer(\"TILE\", 16) : 16;  // nullptr: your default\n"
         "//\n"
         "// lookup() matches the device by name and the problem size by its dimension names: the exact\n"
         "// size, else the nearest (Euclidean distance over sign(v)*ln(1+|v|); on a tie the smaller\n"
         "// problem, values compared in sorted-name order), else nullptr. Each table holds the most\n"
         "// recently tuned kernel version only.\n"
         "#pragma once\n\n"
         "#include <cmath>\n#include <cstddef>\n#include <cstring>\n#include <initializer_list>\n\n";
  out += "namespace " + options.namespace_name + " {\n\n";
  out += header_types;
  out += "\nnamespace detail {\n";

  std::size_t max_dimensions = 0;
  std::string table_rows;
  for (std::size_t t = 0; t < tables.size(); ++t) {
    const auto& table = tables[t];
    const std::string suffix = std::to_string(t);
    max_dimensions = std::max(max_dimensions, table.dimensions.size());
    // Names in comments are literals too: no byte of a name can end the comment line.
    out += "\n// device " + literal(table.device) + ", kernel " + literal(table.kernel) + ", version " +
           literal(table.source_hash) + "\n";
    std::string dimensions = "nullptr";
    if (!table.dimensions.empty()) {
      dimensions = "dimensions_" + suffix;
      out += "inline constexpr const char* " + dimensions + "[] = {";
      for (std::size_t d = 0; d < table.dimensions.size(); ++d) out += (d > 0 ? ", " : "") + literal(table.dimensions[d]);
      out += "};\n";
    }
    std::string rows;
    for (std::size_t e = 0; e < table.entries.size(); ++e) {
      const auto& entry = table.entries[e];
      const std::string entry_suffix = suffix + "_" + std::to_string(e);
      std::string values = "nullptr";
      if (!entry.values.empty()) {
        values = "problem_" + entry_suffix;
        out += "inline constexpr double " + values + "[] = {";
        for (std::size_t d = 0; d < entry.values.size(); ++d) out += (d > 0 ? ", " : "") + double_literal(entry.values[d]);
        out += "};\n";
      }
      std::string parameters = "nullptr";
      if (!entry.config.empty()) {
        parameters = "parameters_" + entry_suffix;
        out += "inline constexpr parameter " + parameters + "[] = {\n";
        for (const auto& [name, value] : entry.config) {
          out += "    {" + literal(name) + ", ";
          if (const auto* integer = std::get_if<std::int64_t>(&value))
            out += "value_kind::integer, " + integer_literal(*integer) + ", 0.0, \"\"";
          else if (const auto* real = std::get_if<double>(&value))
            out += "value_kind::real, 0LL, " + double_literal(*real) + ", \"\"";
          else
            out += "value_kind::text, 0LL, 0.0, " + literal(std::get<std::string>(value));
          out += "},\n";
        }
        out += "};\n";
      }
      rows += "    {" + literal(entry.problem) + ", " + values + ", " + parameters + ", " +
              std::to_string(entry.config.size()) + ", " + double_literal(entry.time_ms) + "},\n";
    }
    out += "inline constexpr configuration configurations_" + suffix + "[] = {\n" + rows + "};\n";
    table_rows += "    {" + literal(table.device) + ", " + literal(table.kernel) + ", " + literal(table.source_hash) +
                  ", " + dimensions + ", " + std::to_string(table.dimensions.size()) + ", configurations_" + suffix +
                  ", " + std::to_string(table.entries.size()) + "},\n";
  }
  out += "\ninline constexpr std::size_t max_dimensions = " + std::to_string(max_dimensions) + ";\n";
  if (tables.empty()) {
    // A zero-length array is not C++: one entry no device name can match (an empty name).
    table_rows = "    {\"\", \"\", \"\", nullptr, 0, nullptr, 0},\n";
  }
  out += "inline constexpr table tables[] = {\n" + table_rows + "};\n\n";
  out += "inline double scaled(double value) { return std::copysign(std::log1p(std::fabs(value)), value); }\n\n";
  out += "}  // namespace detail\n\n";
  out += header_lookup;
  out += "\n}  // namespace " + options.namespace_name + "\n";
  return out;
}

}  // namespace tunekit
