#include "tunekit/measure/results.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <limits>
#include <map>
#include <ostream>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "tunekit/error.hpp"

namespace tunekit::measure {

namespace {

using ordered_json = nlohmann::ordered_json;

// The statistics keys of the contract, in the order they are written.
constexpr const char* statistic_keys[] = {"median_us", "mean_us", "stddev_us", "cv", "min_us", "max_us", "p99_us"};

// ---------------------------------------------------------------- writing

// The deepest nesting of arrays and objects in JSON text, strings skipped.
// Checked before parsing: writing or walking a value nested a million deep
// recurses that deep, and a crafted file must not overflow the stack.
std::size_t nesting_depth(std::string_view text) {
  std::size_t depth = 0;
  std::size_t deepest = 0;
  bool in_string = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\')
        ++i;
      else if (c == '"')
        in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      deepest = std::max(deepest, ++depth);
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return deepest;
}

constexpr std::size_t max_nesting = 64;

ordered_json parse_fragment(const std::string& text, const std::string& what) {
  if (nesting_depth(text) > max_nesting) throw invalid_argument(what + " is nested too deeply");
  try {
    return ordered_json::parse(text);
  } catch (const nlohmann::json::exception&) {
    throw invalid_argument(what + " is not valid JSON");
  }
}

ordered_json object_fragment(const std::string& text, const std::string& what) {
  if (text.empty()) return ordered_json::object();
  ordered_json value = parse_fragment(text, what);
  if (!value.is_object()) throw invalid_argument(what + " must be a JSON object, got " + std::string(value.type_name()));
  return value;
}

summary statistics_of(const measurement_result& result) {
  if (result.samples_us.empty()) throw invalid_argument("result '" + result.name + "' has no samples");
  return summarize(result.samples_us, {0, 0.95, 0});
}

ordered_json params_json(const measurement_result& result) {
  ordered_json params = ordered_json::object();
  for (const auto& [key, value] : result.params)
    params[key] = parse_fragment(value, "param '" + key + "' of result '" + result.name + "'");
  return params;
}

// Shortest text that reads back as the same double.
std::string number_text(double value) {
  char buffer[64];
  const auto written = std::to_chars(buffer, buffer + sizeof buffer, value);
  return std::string(buffer, written.ptr);
}

std::string fixed_text(double value, int decimals) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.*f", decimals, value);
  return buffer;
}

std::string csv_field(const std::string& text) {
  if (text.find_first_of(",\"\r\n") == std::string::npos) return text;
  std::string quoted = "\"";
  for (char c : text) {
    if (c == '"') quoted += '"';
    quoted += c;
  }
  return quoted + '"';
}

std::string markdown_cell(const std::string& text) {
  std::string cell;
  for (char c : text) {
    if (c == '|' || c == '\\' || c == '`' || c == '*' || c == '_') cell += '\\';
    cell += (c == '\n' || c == '\r') ? ' ' : c;
  }
  return cell;
}

// "block=128, variant=fast": params as a reader would write them by hand.
std::string params_text(const measurement_result& result) {
  std::string text;
  for (const auto& [key, value] : result.params) {
    if (!text.empty()) text += ", ";
    const ordered_json parsed = parse_fragment(value, "param '" + key + "' of result '" + result.name + "'");
    text += key + '=' + (parsed.is_string() ? parsed.get<std::string>() : parsed.dump());
  }
  return text;
}

// ---------------------------------------------------------------- reading

// "results[2].samples_us[5]"
std::string where(std::size_t index, const char* key = nullptr) {
  std::string text = "results[" + std::to_string(index) + "]";
  if (key != nullptr) text += std::string(".") + key;
  return text;
}

struct reader {
  std::string source;

  [[noreturn]] void fail(const std::string& what) const { throw invalid_argument("'" + source + "': " + what); }

  void expect_type(const ordered_json& value, bool ok, const std::string& path, const char* expected) const {
    if (!ok) fail(path + ": expected " + expected + ", got " + value.type_name());
  }

  measurement_result result(const ordered_json& entry, std::size_t index) const {
    expect_type(entry, entry.is_object(), where(index), "an object");
    measurement_result parsed;
    for (const char* key : {"name", "params", "samples_us"})
      if (!entry.contains(key)) fail(where(index) + ": missing key \"" + key + "\"");

    const auto& name = entry.at("name");
    expect_type(name, name.is_string(), where(index, "name"), "a string");
    parsed.name = name.get<std::string>();

    const auto& params = entry.at("params");
    expect_type(params, params.is_object(), where(index, "params"), "an object");
    for (const auto& [key, value] : params.items()) parsed.params.emplace_back(key, value.dump());

    const auto& samples = entry.at("samples_us");
    expect_type(samples, samples.is_array(), where(index, "samples_us"), "an array of numbers");
    if (samples.empty()) fail(where(index, "samples_us") + ": no samples");
    parsed.samples_us.reserve(samples.size());
    for (std::size_t s = 0; s < samples.size(); ++s) {
      const auto& sample = samples[s];
      const std::string path = where(index, "samples_us") + "[" + std::to_string(s) + "]";
      expect_type(sample, sample.is_number(), path, "a number");
      const double value = sample.get<double>();
      if (!std::isfinite(value) || value <= 0.0) fail(path + ": a time must be a positive finite number, got " + sample.dump());
      parsed.samples_us.push_back(value);
    }

    for (const char* key : statistic_keys)
      if (entry.contains(key)) expect_type(entry.at(key), entry.at(key).is_number(), where(index, key), "a number");
    for (const char* key : {"telemetry", "throughput"}) {
      if (!entry.contains(key)) continue;
      const auto& value = entry.at(key);
      expect_type(value, value.is_object(), where(index, key), "an object");
      (std::string_view(key) == "telemetry" ? parsed.telemetry : parsed.throughput) = value.dump();
    }
    summarize_result(parsed);
    return parsed;
  }

  result_file file(std::string_view text) const {
    if (nesting_depth(text) > max_nesting)
      fail("arrays and objects nested deeper than " + std::to_string(max_nesting) + " levels");
    ordered_json document;
    try {
      document = ordered_json::parse(text);
    } catch (const nlohmann::json::exception& error) {
      fail(std::string("not valid JSON: ") + error.what());
    }
    if (!document.is_object()) fail(std::string("expected a JSON object at the top level, got ") + document.type_name());
    result_file parsed;
    if (document.contains("device")) {
      const auto& device = document.at("device");
      expect_type(device, device.is_object(), "device", "an object");
      parsed.device = device.dump();
    }
    if (!document.contains("results")) fail("missing key \"results\"");
    const auto& results = document.at("results");
    expect_type(results, results.is_array(), "results", "an array");
    parsed.results.reserve(results.size());
    for (std::size_t index = 0; index < results.size(); ++index) parsed.results.push_back(result(results[index], index));
    return parsed;
  }
};

// Integral floats become integers, so 128.0 and 128 name the same value.
nlohmann::json canonical_value(const nlohmann::json& value) {
  if (value.is_number_float()) {
    const double number = value.get<double>();
    if (std::isfinite(number) && std::floor(number) == number && std::abs(number) < 9007199254740992.0)
      return static_cast<std::int64_t>(number);
    return value;
  }
  if (value.is_object()) {
    nlohmann::json object = nlohmann::json::object();
    for (const auto& [key, item] : value.items()) object[key] = canonical_value(item);
    return object;
  }
  if (value.is_array()) {
    nlohmann::json array = nlohmann::json::array();
    for (const auto& item : value) array.push_back(canonical_value(item));
    return array;
  }
  return value;
}

// ---------------------------------------------------------------- comparing

void check_compare_options(const compare_options& options) {
  if (!(options.threshold > 0.0 && options.threshold < 1.0))
    throw invalid_argument("threshold must be a fraction in (0, 1), got " + number_text(options.threshold));
  if (!(options.alpha > 0.0 && options.alpha < 1.0))
    throw invalid_argument("alpha must be in (0, 1), got " + number_text(options.alpha));
  if (!(options.equivalence_alpha > 0.0 && options.equivalence_alpha < 1.0))
    throw invalid_argument("equivalence alpha must be in (0, 1), got " + number_text(options.equivalence_alpha));
}

std::vector<double> scaled(std::span<const double> samples, double factor) {
  std::vector<double> result(samples.begin(), samples.end());
  for (double& value : result) value *= factor;
  return result;
}

std::string display(const std::string& name, const std::string& params) { return "'" + name + "' " + params; }

// name + params -> index, refusing repeats.
std::map<std::pair<std::string, std::string>, std::size_t> index_of(const result_file& file, const char* which) {
  std::map<std::pair<std::string, std::string>, std::size_t> index;
  for (std::size_t i = 0; i < file.results.size(); ++i) {
    const auto& result = file.results[i];
    auto key = std::make_pair(result.name, canonical_params(result));
    if (!index.emplace(key, i).second)
      throw invalid_argument(std::string("the ") + which + " results hold " + display(key.first, key.second) +
                             " twice");
  }
  return index;
}

}  // namespace

// ---------------------------------------------------------------- public

void summarize_result(measurement_result& result, const summary_options& options) {
  if (result.samples_us.empty()) throw invalid_argument("result '" + result.name + "' has no samples");
  result.statistics = summarize(result.samples_us, options);
}

std::string canonical_params(const measurement_result& result) {
  nlohmann::json params = nlohmann::json::object();  // std::map underneath: keys sorted
  for (const auto& [key, value] : result.params) {
    if (nesting_depth(value) > max_nesting)
      throw invalid_argument("param '" + key + "' of result '" + result.name + "' is nested too deeply");
    nlohmann::json parsed;
    try {
      parsed = nlohmann::json::parse(value);
    } catch (const nlohmann::json::exception&) {
      throw invalid_argument("param '" + key + "' of result '" + result.name + "' is not valid JSON");
    }
    params[key] = canonical_value(parsed);
  }
  return params.dump();
}

void write_json(const result_file& file, std::ostream& out) {
  ordered_json document;
  document["device"] = object_fragment(file.device, "device");
  ordered_json results = ordered_json::array();
  for (const auto& result : file.results) {
    const summary stats = statistics_of(result);
    ordered_json entry;
    entry["name"] = result.name;
    entry["params"] = params_json(result);
    entry["samples_us"] = result.samples_us;
    entry["median_us"] = stats.median;
    entry["mean_us"] = stats.mean;
    entry["stddev_us"] = stats.stddev;
    entry["cv"] = stats.cv;
    entry["min_us"] = stats.min;
    entry["max_us"] = stats.max;
    entry["p99_us"] = stats.p99;
    entry["telemetry"] = object_fragment(result.telemetry, "telemetry of result '" + result.name + "'");
    entry["throughput"] = object_fragment(result.throughput, "throughput of result '" + result.name + "'");
    results.push_back(std::move(entry));
  }
  document["results"] = std::move(results);
  out << document.dump(2) << '\n';
}

void write_csv(const result_file& file, std::ostream& out) {
  out << "name,params,count,median_us,mean_us,stddev_us,cv,min_us,max_us,p99_us\r\n";
  for (const auto& result : file.results) {
    const summary stats = statistics_of(result);
    out << csv_field(result.name) << ',' << csv_field(params_json(result).dump()) << ',' << stats.count;
    for (double value : {stats.median, stats.mean, stats.stddev, stats.cv, stats.min, stats.max, stats.p99})
      out << ',' << number_text(value);
    out << "\r\n";
  }
}

void write_markdown(const result_file& file, std::ostream& out) {
  out << "| name | params | count | median (us) | mean (us) | stddev (us) | cv | min (us) | max (us) | p99 (us) |\n"
      << "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|\n";
  for (const auto& result : file.results) {
    const summary stats = statistics_of(result);
    out << "| " << markdown_cell(result.name) << " | " << markdown_cell(params_text(result)) << " | " << stats.count
        << " | " << fixed_text(stats.median, 3) << " | " << fixed_text(stats.mean, 3) << " | "
        << fixed_text(stats.stddev, 3) << " | " << fixed_text(100.0 * stats.cv, 2) << "% | "
        << fixed_text(stats.min, 3) << " | " << fixed_text(stats.max, 3) << " | " << fixed_text(stats.p99, 3)
        << " |\n";
  }
}

result_file parse_result_file(std::string_view text, std::string_view source) {
  const reader read{std::string(source)};
  try {
    return read.file(text);
  } catch (const nlohmann::json::exception& error) {  // validation above should leave none; never crash on one
    read.fail(std::string("malformed: ") + error.what());
  }
}

result_file read_result_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw invalid_argument("'" + path + "': cannot open the file");
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) throw invalid_argument("'" + path + "': cannot read the file");
  return parse_result_file(text.str(), path);
}

void save_result_file(const result_file& file, const std::string& path) {
  std::ostringstream text;
  write_json(file, text);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) throw error("'" + path + "': cannot open for writing");
  out << text.str();
  out.flush();
  if (!out) throw error("'" + path + "': writing failed");
}

std::string_view to_string(verdict value) {
  switch (value) {
    case verdict::same: return "SAME";
    case verdict::faster: return "FASTER";
    case verdict::slower: return "SLOWER";
    case verdict::unsure: return "UNSURE";
  }
  return "UNSURE";
}

compared_pair compare_samples(std::span<const double> base, std::span<const double> current,
                              const compare_options& options) {
  check_compare_options(options);
  compared_pair pair;
  pair.base = summarize(base, {0, 0.95, 0});
  pair.current = summarize(current, {0, 0.95, 0});
  if (pair.base.median > 0.0)
    pair.change = pair.current.median / pair.base.median - 1.0;
  else
    pair.change = pair.current.median > pair.base.median ? std::numeric_limits<double>::infinity() : 0.0;

  const rank_test test = mann_whitney(base, current);
  pair.p_value = test.p_two_sided;
  pair.p_slower = test.p_greater;
  pair.p_faster = test.p_less;
  const double threshold = options.threshold;
  if (pair.change > threshold && pair.p_slower <= options.alpha) {
    pair.outcome = verdict::slower;
  } else if (pair.change < -threshold && pair.p_faster <= options.alpha) {
    pair.outcome = verdict::faster;
  } else if (std::abs(pair.change) <= threshold) {
    // Two one-sided tests: current below base * (1 + t) and above base * (1 - t).
    const bool below_upper = mann_whitney(scaled(base, 1.0 + threshold), current).p_less <= options.equivalence_alpha;
    const bool above_lower =
        below_upper && mann_whitney(scaled(base, 1.0 - threshold), current).p_greater <= options.equivalence_alpha;
    pair.outcome = below_upper && above_lower ? verdict::same : verdict::unsure;
  } else {
    pair.outcome = verdict::unsure;
  }
  return pair;
}

comparison compare(const result_file& base, const result_file& current, const compare_options& options) {
  check_compare_options(options);
  const auto base_index = index_of(base, "base");
  const auto current_index = index_of(current, "new");
  comparison result;
  for (const auto& each : base.results) {
    auto key = std::make_pair(each.name, canonical_params(each));
    const auto found = current_index.find(key);
    if (found == current_index.end()) {
      result.only_in_base.push_back({std::move(key.first), std::move(key.second)});
      continue;
    }
    compared_pair pair = compare_samples(each.samples_us, current.results[found->second].samples_us, options);
    pair.name = std::move(key.first);
    pair.params = std::move(key.second);
    result.pairs.push_back(std::move(pair));
  }
  for (const auto& each : current.results) {
    auto key = std::make_pair(each.name, canonical_params(each));
    if (!base_index.contains(key)) result.only_in_new.push_back({std::move(key.first), std::move(key.second)});
  }
  std::stable_sort(result.pairs.begin(), result.pairs.end(), [](const compared_pair& left, const compared_pair& right) {
    return left.change > right.change;
  });
  return result;
}

}  // namespace tunekit::measure
