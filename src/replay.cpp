#include "tunekit/replay.hpp"

#include <map>
#include <nlohmann/json.hpp>

#include "detail/kernel_tuner_files.hpp"
#include "tunekit/error.hpp"

namespace tunekit {

namespace {

parameter_value value_of(const nlohmann::json& json, const std::string& name) {
  if (json.is_boolean()) return parameter_value{std::string(json.get<bool>() ? "True" : "False")};
  if (json.is_number_integer()) return parameter_value{json.get<std::int64_t>()};
  if (json.is_number_float()) return parameter_value{json.get<double>()};
  if (json.is_string()) return parameter_value{json.get<std::string>()};
  throw invalid_argument("parameter '" + name + "' has a value that is not a number, string or boolean");
}

// The text Kernel Tuner wrote for a value in a cache key: Python's str().
std::string python_text(const parameter_value& value) {
  std::string text = to_string(value);
  if (std::holds_alternative<double>(value) && text.find_first_of(".eEn") == std::string::npos)
    text += ".0";  // 1 -> "1.0"; inf/nan stay
  return text;
}

double number_or_zero(const nlohmann::json& record, const char* key) {
  const auto it = record.find(key);
  return it != record.end() && it->is_number() ? it->get<double>() : 0.0;
}

}  // namespace

recorded_space load_kernel_tuner_cache(const std::filesystem::path& path) {
  const std::string bytes = detail::read_maybe_gzipped(path);
  nlohmann::json document;
  try {
    document = nlohmann::json::parse(bytes);
  } catch (const nlohmann::json::exception& error) {
    throw invalid_argument("'" + path.string() + "' is not JSON: " + error.what());
  }
  const std::string where = "'" + path.string() + "'";
  if (!document.is_object() || !document.contains("tune_params") || !document.contains("cache") ||
      !document["tune_params"].is_object() || !document["cache"].is_object())
    throw invalid_argument(where + " is not a Kernel Tuner cache file (no tune_params/cache objects)");

  std::vector<std::string> keys;
  if (document.contains("tune_params_keys")) {
    for (const auto& key : document["tune_params_keys"]) keys.push_back(key.get<std::string>());
  } else {
    for (const auto& [key, values] : document["tune_params"].items()) keys.push_back(key);
  }

  std::vector<parameter> parameters;
  std::vector<std::map<std::string, std::uint32_t>> index_of_text;
  try {
    for (const auto& key : keys) {
      const auto& values = document["tune_params"].at(key);
      if (!values.is_array() || values.empty()) throw invalid_argument("parameter '" + key + "' has no values");
      parameter entry{key, {}};
      std::map<std::string, std::uint32_t> texts;
      for (const auto& value : values) {
        entry.values.push_back(value_of(value, key));
        texts.emplace(python_text(entry.values.back()), static_cast<std::uint32_t>(entry.values.size() - 1));
      }
      parameters.push_back(std::move(entry));
      index_of_text.push_back(std::move(texts));
    }
  } catch (const nlohmann::json::exception& error) {
    throw invalid_argument(where + ": malformed tune_params: " + error.what());
  }

  std::vector<configuration> configurations;
  std::vector<recorded_result> results_in_file_order;
  for (const auto& [key, record] : document["cache"].items()) {
    configuration config;
    std::size_t start = 0;
    for (std::size_t p = 0; p < parameters.size(); ++p) {
      const std::size_t comma = key.find(',', start);
      const std::string text = key.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
      const auto found = index_of_text[p].find(text);
      if (found == index_of_text[p].end())
        throw invalid_argument(where + ": cache key '" + key + "' has value '" + text + "' not listed for '" +
                               parameters[p].name + "'");
      config.value_indices.push_back(found->second);
      if (comma == std::string::npos && p + 1 < parameters.size())
        throw invalid_argument(where + ": cache key '" + key + "' has too few values");
      start = comma == std::string::npos ? key.size() + 1 : comma + 1;
    }
    if (start <= key.size()) throw invalid_argument(where + ": cache key '" + key + "' has too many values");
    if (!record.is_object() || !record.contains("time"))
      throw invalid_argument(where + ": cache entry '" + key + "' has no time");
    recorded_result result;
    const auto& time = record["time"];
    if (time.is_number()) {
      result.time = time.get<double>();
    } else if (time.is_string()) {
      const auto status = detail::kernel_tuner_status(time.get<std::string>());
      if (!status)
        throw invalid_argument(where + ": cache entry '" + key + "': unknown failure '" + time.get<std::string>() + "'");
      result.status = *status;
    } else {
      throw invalid_argument(where + ": cache entry '" + key + "' has a time that is neither a number nor a failure");
    }
    result.compile_time = number_or_zero(record, "compile_time");
    result.verification_time = number_or_zero(record, "verification_time");
    result.benchmark_time = number_or_zero(record, "benchmark_time");
    configurations.push_back(std::move(config));
    results_in_file_order.push_back(result);
  }
  if (configurations.empty()) throw invalid_argument(where + " records no configurations");

  recorded_space recorded{document.value("device_name", std::string()), document.value("kernel_name", std::string()),
                          document.value("objective", std::string("time")),
                          search_space::from_configurations(parameters, configurations), {}};
  if (recorded.space.size() != configurations.size())
    throw invalid_argument(where + " records a configuration twice");
  recorded.results.resize(configurations.size());
  for (std::size_t i = 0; i < configurations.size(); ++i)
    recorded.results[*recorded.space.find(configurations[i])] = results_in_file_order[i];
  return recorded;
}

}  // namespace tunekit
