#include "tunekit/spec.hpp"

#include <cmath>
#include <fstream>
#include <set>
#include <sstream>

// Header-only use of toml++ (Debian's CMake target would link its shared
// library, which the GPU machine lacks).
#define TOML_HEADER_ONLY 1
#include <toml++/toml.h>

#include <nlohmann/json.hpp>

#include "detail/arguments.hpp"
#include "tunekit/expression.hpp"

namespace tunekit {

std::string_view to_string(element_type type) {
  switch (type) {
    case element_type::float32: return "float32";
    case element_type::float64: return "float64";
    case element_type::int32: return "int32";
    case element_type::int64: return "int64";
    case element_type::uint8: return "uint8";
  }
  return "unknown";
}

std::size_t size_of(element_type type) {
  switch (type) {
    case element_type::float32: return 4;
    case element_type::float64: return 8;
    case element_type::int32: return 4;
    case element_type::int64: return 8;
    case element_type::uint8: return 1;
  }
  return 0;
}

bool is_floating(element_type type) { return type == element_type::float32 || type == element_type::float64; }

std::string kernel_spec::problem_text() const {
  nlohmann::ordered_json object = nlohmann::ordered_json::object();
  for (const auto& [size_name, value] : problem) {
    if (value == static_cast<double>(static_cast<std::int64_t>(value)))
      object[size_name] = static_cast<std::int64_t>(value);
    else
      object[size_name] = value;
  }
  return object.dump();
}

namespace {

// Reads one spec, remembering where each node came from for messages.
class reader {
 public:
  explicit reader(std::filesystem::path path) : path_(std::move(path)) {}

  [[noreturn]] void fail(int line, const std::string& message) const {
    std::string text = path_.string();
    if (line > 0) {
      text += ':';
      text += std::to_string(line);
    }
    text += ": ";
    text += message;
    throw spec_error(text);
  }
  [[noreturn]] void fail(const toml::node& node, const std::string& message) const {
    fail(static_cast<int>(node.source().begin.line), message);
  }

  void only_keys(const toml::table& table, const std::string& where, std::initializer_list<std::string_view> known) const {
    for (const auto& [key, node] : table) {
      bool found = false;
      for (const auto name : known) found = found || key.str() == name;
      if (!found) {
        std::string list;
        for (const auto name : known) {
          if (!list.empty()) list += ", ";
          list += name;
        }
        fail(node, "unknown key '" + std::string(key.str()) + "' in " + where + " (known: " + list + ")");
      }
    }
  }

  const toml::table* table(const toml::table& parent, std::string_view key, bool required) const {
    const auto* node = parent.get(key);
    if (node == nullptr) {
      if (required) fail(1, "missing [" + std::string(key) + "] table");
      return nullptr;
    }
    if (!node->is_table()) fail(*node, "'" + std::string(key) + "' must be a table");
    return node->as_table();
  }

  std::string string(const toml::table& parent, std::string_view key, const std::string& where, bool required,
                     std::string fallback = {}) const {
    const auto* node = parent.get(key);
    if (node == nullptr) {
      if (required) fail(parent.source().begin.line, "missing '" + std::string(key) + "' in " + where);
      return fallback;
    }
    if (!node->is_string()) fail(*node, "'" + std::string(key) + "' in " + where + " must be a string");
    return node->value<std::string>().value();
  }

  // A string, or an integer written as a number: expressions.
  std::string expression_text(const toml::node& node, const std::string& what) const {
    if (node.is_string()) return node.value<std::string>().value();
    if (node.is_integer()) return std::to_string(node.value<std::int64_t>().value());
    if (node.is_floating_point()) {
      std::ostringstream text;
      text << node.value<double>().value();
      return text.str();
    }
    fail(node, what + " must be an expression (a string) or a number");
  }

  double number(const toml::node& node, const std::string& what) const {
    if (node.is_integer()) return static_cast<double>(node.value<std::int64_t>().value());
    if (node.is_floating_point()) return node.value<double>().value();
    fail(node, what + " must be a number");
  }

  std::filesystem::path existing_file(const toml::node& node, const std::string& text, const std::string& what) const {
    std::filesystem::path file = text;
    if (file.is_relative()) file = path_.parent_path() / file;
    std::error_code ignored;
    if (!std::filesystem::is_regular_file(file, ignored)) fail(node, what + " '" + text + "' not found (looked for " + file.string() + ")");
    return file;
  }

  parameter_value value_of(const toml::node& node, const std::string& what) const {
    if (node.is_integer()) return node.value<std::int64_t>().value();
    if (node.is_floating_point()) return node.value<double>().value();
    if (node.is_string()) return node.value<std::string>().value();
    if (node.is_boolean()) return std::int64_t{node.value<bool>().value() ? 1 : 0};
    fail(node, what + " must be a number, a string or a boolean");
  }

  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

element_type parse_type(const reader& in, const toml::node& node, const std::string& text) {
  for (const auto type : {element_type::float32, element_type::float64, element_type::int32, element_type::int64,
                          element_type::uint8})
    if (text == to_string(type)) return type;
  in.fail(node, "unknown type '" + text + "' (float32, float64, int32, int64, uint8)");
}

std::uint64_t parse_seed(const reader& in, const toml::table& options) {
  const auto* seed = options.get("seed");
  if (seed == nullptr) return buffer_init{}.seed;
  if (!seed->is_integer() || seed->value<std::int64_t>().value() < 0) in.fail(*seed, "seed must be an integer >= 0");
  return static_cast<std::uint64_t>(seed->value<std::int64_t>().value());
}

buffer_init parse_init(const reader& in, const toml::node& node) {
  buffer_init init;
  if (node.is_string()) {
    const auto text = node.value<std::string>().value();
    if (text == "sequence") {
      init.how = buffer_init::kind::sequence;
      return init;
    }
    if (text == "random") return init;
    if (text == "zeros") {
      init.how = buffer_init::kind::constant;
      return init;
    }
    in.fail(node, "init '" + text + "': use \"random\", \"sequence\", \"zeros\" or a table");
  }
  if (!node.is_table()) in.fail(node, "init must be a string or a table");
  const auto& table = *node.as_table();
  if (table.size() != 1) in.fail(node, "init names exactly one of random, sequence, constant, file, blobs");
  const auto entry = *table.begin();  // a proxy of references into the table
  const toml::node& value = entry.second;
  const std::string kind(entry.first.str());
  if (kind == "random") {
    if (!value.is_table()) in.fail(value, "init.random must be a table {seed, low, high, step}");
    const auto& options = *value.as_table();
    in.only_keys(options, "init.random", {"seed", "low", "high", "step"});
    init.seed = parse_seed(in, options);
    if (const auto* low = options.get("low")) init.low = in.number(*low, "low");
    if (const auto* high = options.get("high")) init.high = in.number(*high, "high");
    if (!(init.low < init.high)) in.fail(value, "init.random needs low < high");
    if (const auto* step = options.get("step")) {
      init.step = in.number(*step, "step");
      if (!(init.step > 0.0) || !std::isfinite(init.step)) in.fail(*step, "step must be a number > 0");
    }
  } else if (kind == "blobs") {
    if (!value.is_table()) in.fail(value, "init.blobs must be a table {seed, scale, width}");
    const auto& options = *value.as_table();
    in.only_keys(options, "init.blobs", {"seed", "scale", "width"});
    init.how = buffer_init::kind::blobs;
    init.seed = parse_seed(in, options);
    if (const auto* scale = options.get("scale")) init.scale = in.number(*scale, "scale");
    if (!(init.scale >= 4.0) || !std::isfinite(init.scale)) in.fail(value, "init.blobs needs scale >= 4");
    const auto* width = options.get("width");
    if (width == nullptr) in.fail(value, "init.blobs needs width, the row length (an expression)");
    init.width = in.expression_text(*width, "width");
  } else if (kind == "sequence") {
    init.how = buffer_init::kind::sequence;
  } else if (kind == "constant") {
    init.how = buffer_init::kind::constant;
    init.value = in.number(value, "init.constant");
  } else if (kind == "file") {
    init.how = buffer_init::kind::file;
    if (!value.is_string()) in.fail(value, "init.file must be a path");
    init.file = in.existing_file(value, value.value<std::string>().value(), "init file");
  } else {
    in.fail(value, "unknown init '" + kind + "' (random, sequence, constant, file, blobs)");
  }
  return init;
}

// Every expression of the spec compiles against the parameters and the problem size.
void check_expression(const reader& in, int line, const std::string& text, const std::string& what,
                      const variable_table& names) {
  try {
    const expression compiled(text, names);
    (void)compiled;
  } catch (const invalid_argument& problem) {
    in.fail(line, what + ": " + problem.what());
  }
}

}  // namespace

kernel_spec parse_spec(std::string_view text, const std::filesystem::path& path) {
  reader in(path);
  toml::table root;
  try {
    root = toml::parse(text, path.string());
  } catch (const toml::parse_error& problem) {
    in.fail(static_cast<int>(problem.source().begin.line), std::string("not valid TOML: ") + std::string(problem.description()));
  }
  in.only_keys(root, "the spec", {"kernel", "parameters", "search", "problem", "launch", "arguments", "reference",
                                  "measure", "objective", "model"});
  kernel_spec spec;
  spec.path = path;

  // [kernel]
  const auto& kernel = *in.table(root, "kernel", true);
  in.only_keys(kernel, "[kernel]", {"name", "backend", "source", "function", "compile_options"});
  spec.name = in.string(kernel, "name", "[kernel]", true);
  const auto backend = in.string(kernel, "backend", "[kernel]", false, "host");
  if (backend == "host") {
    spec.backend = backend_kind::host;
  } else if (backend == "cuda") {
    spec.backend = backend_kind::cuda;
  } else {
    in.fail(*kernel.get("backend"), "unknown backend '" + backend + "' (host or cuda)");
  }
  const auto source = in.string(kernel, "source", "[kernel]", true);
  spec.source = in.existing_file(*kernel.get("source"), source, "kernel source");
  spec.function = in.string(kernel, "function", "[kernel]", false, spec.name);
  if (const auto* options = kernel.get("compile_options")) {
    if (!options->is_array()) in.fail(*options, "compile_options must be an array of strings");
    for (const auto& each : *options->as_array()) {
      if (!each.is_string()) in.fail(each, "compile_options must be an array of strings");
      spec.compile_options.push_back(each.value<std::string>().value());
    }
  }

  // [problem]
  variable_table names;
  if (const auto* problem = in.table(root, "problem", false)) {
    for (const auto& [key, node] : *problem) {
      spec.problem.emplace_back(std::string(key.str()), in.number(node, "problem size '" + std::string(key.str()) + "'"));
      names.add(key.str(), spec.problem.back().second);
    }
  }

  // [parameters]
  const auto& parameters = *in.table(root, "parameters", true);
  if (parameters.empty()) in.fail(parameters.source().begin.line, "[parameters] declares no parameter");
  for (const auto& [key, node] : parameters) {
    const std::string name(key.str());
    if (names.find(name) != variable_table::npos) in.fail(node, "'" + name + "' is both a parameter and a problem size");
    parameter each{name, {}};
    if (node.is_array()) {
      for (const auto& value : *node.as_array()) each.values.push_back(in.value_of(value, "a value of '" + name + "'"));
    } else {
      each.values.push_back(in.value_of(node, "parameter '" + name + "'"));
    }
    if (each.values.empty()) in.fail(node, "parameter '" + name + "' has no values");
    spec.parameters.push_back(std::move(each));
    names.add(name);
  }

  // [search]
  std::optional<int> baseline_line;
  if (const auto* search = in.table(root, "search", false)) {
    in.only_keys(*search, "[search]", {"constraints", "baseline"});
    if (const auto* constraints = search->get("constraints")) {
      if (!constraints->is_array()) in.fail(*constraints, "constraints must be an array of expressions");
      for (const auto& each : *constraints->as_array()) {
        if (!each.is_string()) in.fail(each, "a constraint must be a string");
        const auto rule = each.value<std::string>().value();
        check_expression(in, static_cast<int>(each.source().begin.line), rule, "constraint '" + rule + "'", names);
        spec.constraints.push_back(rule);
      }
    }
    if (const auto* baseline = search->get("baseline")) {
      if (!baseline->is_table()) in.fail(*baseline, "baseline must be a table {parameter = value, ...}");
      baseline_line = static_cast<int>(baseline->source().begin.line);
      for (const auto& [key, node] : *baseline->as_table()) {
        const std::string name(key.str());
        const auto found = std::find_if(spec.parameters.begin(), spec.parameters.end(),
                                        [&](const parameter& each) { return each.name == name; });
        if (found == spec.parameters.end()) in.fail(node, "baseline names '" + name + "', which is not a parameter");
        const auto value = in.value_of(node, "baseline value of '" + name + "'");
        if (std::find(found->values.begin(), found->values.end(), value) == found->values.end())
          in.fail(node, "baseline " + name + " = " + to_string(value) + " is not one of its values");
        spec.baseline.emplace_back(name, value);
      }
    }
  }
  // Parameters the baseline leaves out take their first value.
  for (const auto& each : spec.parameters) {
    if (std::none_of(spec.baseline.begin(), spec.baseline.end(), [&](const auto& set) { return set.first == each.name; }))
      spec.baseline.emplace_back(each.name, each.values.front());
  }

  // [launch]
  if (const auto* launch = in.table(root, "launch", false)) {
    in.only_keys(*launch, "[launch]", {"grid", "block", "shared_memory", "threads"});
    const auto dims = [&](const char* key, std::vector<std::string>& out) {
      const auto* node = launch->get(key);
      if (node == nullptr) return;
      if (node->is_array()) {
        if (node->as_array()->empty() || node->as_array()->size() > 3) in.fail(*node, std::string(key) + " takes 1 to 3 dimensions");
        for (const auto& each : *node->as_array()) out.push_back(in.expression_text(each, key));
      } else {
        out.push_back(in.expression_text(*node, key));
      }
      for (const auto& each : out) check_expression(in, static_cast<int>(node->source().begin.line), each, key, names);
    };
    dims("grid", spec.grid);
    dims("block", spec.block);
    if (const auto* shared = launch->get("shared_memory")) {
      spec.shared_memory = in.expression_text(*shared, "shared_memory");
      check_expression(in, static_cast<int>(shared->source().begin.line), spec.shared_memory, "shared_memory", names);
    }
    if (const auto* threads = launch->get("threads")) {
      spec.threads = in.expression_text(*threads, "threads");
      check_expression(in, static_cast<int>(threads->source().begin.line), spec.threads, "threads", names);
    }
  }
  if (spec.backend == backend_kind::cuda && (spec.grid.empty() || spec.block.empty()))
    in.fail(kernel.source().begin.line, "a cuda kernel needs [launch] grid and block");

  // [[arguments]]
  const auto* arguments = root.get("arguments");
  if (arguments == nullptr || !arguments->is_array_of_tables() || arguments->as_array()->empty())
    in.fail(arguments != nullptr ? static_cast<int>(arguments->source().begin.line) : 1,
            "the spec needs [[arguments]]: the buffers and scalars the kernel takes, in order");
  std::set<std::string> argument_names;
  for (const auto& node : *arguments->as_array()) {
    const auto& table = *node.as_table();
    const int line = static_cast<int>(table.source().begin.line);
    argument_spec argument;
    argument.line = line;
    argument.name = in.string(table, "name", "[[arguments]]", true);
    if (!argument_names.insert(argument.name).second) in.fail(line, "argument '" + argument.name + "' is declared twice");
    if (const auto* scalar = table.get("scalar")) {
      in.only_keys(table, "a scalar argument", {"name", "scalar", "value"});
      argument.scalar = true;
      if (!scalar->is_string()) in.fail(*scalar, "scalar must name a type");
      argument.type = parse_type(in, *scalar, scalar->value<std::string>().value());
      const auto* value = table.get("value");
      if (value == nullptr) in.fail(line, "scalar '" + argument.name + "' needs a value");
      argument.value = in.expression_text(*value, "value");
      check_expression(in, static_cast<int>(value->source().begin.line), argument.value, "value of '" + argument.name + "'", names);
    } else {
      in.only_keys(table, "a buffer argument", {"name", "type", "count", "init", "direction", "pass"});
      const auto type = in.string(table, "type", "buffer '" + argument.name + "'", true);
      argument.type = parse_type(in, *table.get("type"), type);
      const auto* count = table.get("count");
      if (count == nullptr) in.fail(line, "buffer '" + argument.name + "' needs a count");
      argument.count = in.expression_text(*count, "count");
      check_expression(in, static_cast<int>(count->source().begin.line), argument.count, "count of '" + argument.name + "'", names);
      if (const auto* init = table.get("init")) {
        argument.init = parse_init(in, *init);
        if (argument.init.how == buffer_init::kind::blobs)
          check_expression(in, static_cast<int>(init->source().begin.line), argument.init.width,
                           "blobs width of '" + argument.name + "'", names);
      }
      const auto direction = in.string(table, "direction", "buffer '" + argument.name + "'", false, "in");
      if (direction == "in") {
        argument.direction = argument_direction::in;
      } else if (direction == "out") {
        argument.direction = argument_direction::out;
      } else if (direction == "inout") {
        argument.direction = argument_direction::inout;
      } else {
        in.fail(*table.get("direction"), "direction must be in, out or inout");
      }
      const auto pass = in.string(table, "pass", "buffer '" + argument.name + "'", false, "pointer");
      if (pass == "value") {
        if (spec.backend != backend_kind::cuda)
          in.fail(*table.get("pass"), "pass = \"value\" is for cuda kernels (a host kernel gets pointers)");
        if (argument.direction != argument_direction::in)
          in.fail(*table.get("pass"), "pass = \"value\" is for inputs: the kernel's copy is not read back");
        argument.by_value = true;
      } else if (pass != "pointer") {
        in.fail(*table.get("pass"), "pass must be pointer or value");
      }
    }
    spec.arguments.push_back(std::move(argument));
  }
  if (std::none_of(spec.arguments.begin(), spec.arguments.end(),
                   [](const argument_spec& each) { return !each.scalar && each.direction != argument_direction::in; }))
    in.fail(static_cast<int>(arguments->source().begin.line), "no argument is an output (direction out or inout): nothing to verify");

  // [reference]
  const auto* reference = in.table(root, "reference", false);
  if (reference == nullptr) in.fail(1, "missing [reference]: every variant's output is checked against it");
  in.only_keys(*reference, "[reference]", {"function", "source", "tolerance"});
  spec.reference_function = in.string(*reference, "function", "[reference]", true);
  spec.reference_source = spec.source;
  if (const auto* file = reference->get("source"))
    spec.reference_source = in.existing_file(*file, in.string(*reference, "source", "[reference]", true), "reference source");
  if (const auto* accuracy = reference->get("tolerance")) {
    if (!accuracy->is_table()) in.fail(*accuracy, "tolerance must be a table {absolute, relative}");
    in.only_keys(*accuracy->as_table(), "tolerance", {"absolute", "relative"});
    if (const auto* absolute = accuracy->as_table()->get("absolute")) spec.accuracy.absolute = in.number(*absolute, "absolute");
    if (const auto* relative = accuracy->as_table()->get("relative")) spec.accuracy.relative = in.number(*relative, "relative");
    if (spec.accuracy.absolute < 0 || spec.accuracy.relative < 0) in.fail(*accuracy, "tolerances must be >= 0");
  }

  // [measure]
  if (const auto* settings = in.table(root, "measure", false)) {
    in.only_keys(*settings, "[measure]", {"min_seconds", "max_noise", "timeout_seconds", "watchdog_seconds"});
    const auto positive = [&](const char* key, double& out) {
      if (const auto* node = settings->get(key)) {
        out = in.number(*node, key);
        if (!(out > 0)) in.fail(*node, std::string(key) + " must be positive");
      }
    };
    positive("min_seconds", spec.measurement.min_seconds);
    positive("max_noise", spec.measurement.max_noise);
    positive("timeout_seconds", spec.measurement.timeout_seconds);
    positive("watchdog_seconds", spec.measurement.watchdog_seconds);
  }

  // [model]
  if (const auto* model = in.table(root, "model", false)) {
    in.only_keys(*model, "[model]", {"bytes_read", "bytes_written", "flops", "bf16_when"});
    work_model declared;
    for (auto [key, field] : {std::pair{"bytes_read", &declared.bytes_read}, std::pair{"bytes_written", &declared.bytes_written},
                              std::pair{"flops", &declared.flops}, std::pair{"bf16_when", &declared.bf16_when}}) {
      const auto* node = model->get(key);
      if (node == nullptr) continue;
      *field = in.expression_text(*node, key);
      check_expression(in, static_cast<int>(node->source().begin.line), *field, std::string("[model] ") + key, names);
    }
    spec.model = declared;
  }

  // [objective]
  if (const auto* objective = in.table(root, "objective", false)) {
    in.only_keys(*objective, "[objective]", {"kind", "name", "metric", "goal"});
    const int line = static_cast<int>(objective->source().begin.line);
    std::string kind = objective->get("metric") != nullptr ? "metric" : "time";
    if (objective->get("kind") != nullptr) kind = in.string(*objective, "kind", "[objective]", true);
    if (kind == "time") {
      spec.objective.how = objective_spec::kind::time;
    } else if (kind == "energy") {
      spec.objective.how = objective_spec::kind::energy;
      spec.objective.name = "energy_per_run_joules";
      if (spec.backend != backend_kind::cuda) in.fail(line, "an energy objective needs the cuda backend (NVML)");
    } else if (kind == "metric") {
      spec.objective.how = objective_spec::kind::metric;
      if (objective->get("metric") == nullptr) in.fail(line, "a metric objective needs metric = \"expression\"");
      spec.objective.expression = in.expression_text(*objective->get("metric"), "metric");
      if (names.find("time_us") != variable_table::npos)
        in.fail(line, "'time_us' names the median time in a metric: rename that parameter or problem size");
      names.add("time_us");
      check_expression(in, static_cast<int>(objective->get("metric")->source().begin.line), spec.objective.expression,
                       "metric", names);
      spec.objective.name = "metric";
    } else {
      in.fail(*objective->get("kind"), "unknown objective kind '" + kind + "' (time, metric or energy)");
    }
    if (objective->get("name") != nullptr) spec.objective.name = in.string(*objective, "name", "[objective]", true);
    if (objective->get("goal") != nullptr) {
      const auto goal = in.string(*objective, "goal", "[objective]", true);
      if (goal != "min" && goal != "max") in.fail(*objective->get("goal"), "goal is min or max, not '" + goal + "'");
      if (spec.objective.how != objective_spec::kind::metric && goal == "max")
        in.fail(*objective->get("goal"), "only a metric can be maximised");
      spec.objective.maximize = goal == "max";
    }
  }

  // The baseline must satisfy the constraints: a space without it is a spec error.
  const auto space = search_space::enumerate(space_of(spec));
  if (space.empty()) in.fail(1, "no configuration satisfies the constraints");
  if (!find_baseline(spec, space)) in.fail(baseline_line.value_or(1), "the baseline violates the constraints");
  return spec;
}

kernel_spec load_spec(const std::filesystem::path& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) throw spec_error(path.string() + ": cannot read the spec");
  std::ostringstream text;
  text << file.rdbuf();
  return parse_spec(text.str(), path);
}

std::optional<measure::work> work_of(const kernel_spec& spec, const search_space& space, std::size_t index) {
  if (!spec.model) return std::nullopt;
  variable_table names;
  detail::name_configuration(names, spec, space, index);
  const auto value = [&](const std::string& text) { return expression(text, names).evaluate(); };
  measure::work work{.bytes_read = value(spec.model->bytes_read),
                     .bytes_written = value(spec.model->bytes_written),
                     .flops = value(spec.model->flops)};
  if (value(spec.model->bf16_when) != 0.0) work.flop_type = "bf16";
  return work;
}

space_definition space_of(const kernel_spec& spec) {
  space_definition definition;
  definition.parameters = spec.parameters;
  definition.constraints = spec.constraints;
  for (const auto& [name, value] : spec.problem) definition.constants[name] = value;
  return definition;
}

std::optional<std::size_t> find_baseline(const kernel_spec& spec, const search_space& space) {
  configuration wanted;
  for (const auto& each : space.parameters()) {
    const auto set = std::find_if(spec.baseline.begin(), spec.baseline.end(),
                                  [&](const auto& entry) { return entry.first == each.name; });
    const auto value = std::find(each.values.begin(), each.values.end(), set->second);
    wanted.value_indices.push_back(static_cast<std::uint32_t>(value - each.values.begin()));
  }
  return space.find(wanted);
}

std::size_t baseline_index(const kernel_spec& spec, const search_space& space) {
  const auto index = find_baseline(spec, space);
  if (!index) throw spec_error(spec.path.string() + ": the baseline violates the constraints");
  return *index;
}

}  // namespace tunekit
