#pragma once
// Result files, the JSON contract other commands read, and the comparison of
// two of them (`tunekit compare`).
//
//   {"device": {...},
//    "results": [{"name": "gemm", "params": {"block": 128},
//                 "samples_us": [12.1, 12.3, ...],
//                 "median_us": 12.2, "mean_us": 12.2, "stddev_us": 0.1, "cv": 0.008,
//                 "min_us": 12.1, "max_us": 12.5, "p99_us": 12.5,
//                 "telemetry": {...}, "throughput": {...}}]}
//
// Writers emit every key above and every sample, with statistics computed
// from the samples (a result without samples is refused). The reader requires only
// "results" and, per result, "name" (a string), "params" (an object) and
// "samples_us" (a non-empty array of positive finite numbers); "device",
// "telemetry" and "throughput" must be objects when present, and the
// statistics must be numbers when present. Statistics are always recomputed
// from the samples: the samples are the record, so a file can never disagree
// with itself.
//
//   auto file = tunekit::measure::read_result_file("base.json");
//   auto diff = tunekit::measure::compare(file, tunekit::measure::read_result_file("new.json"));

#include <cstddef>
#include <iosfwd>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tunekit/measure/statistics.hpp"

namespace tunekit::measure {

/// One measured configuration of one kernel.
struct measurement_result {
  std::string name;
  /// Parameter name -> value as JSON text ("128", "\"fast\"", "1.5"), in order.
  std::vector<std::pair<std::string, std::string>> params;
  std::vector<double> samples_us;
  summary statistics;  ///< of samples_us: filled by the reader, or call summarize_result()
  std::string telemetry = "{}";   ///< a JSON object, as text
  std::string throughput = "{}";  ///< a JSON object, as text
};

/// A result file: the device measured on and its results.
struct result_file {
  std::string device = "{}";  ///< a JSON object, as text
  std::vector<measurement_result> results;
};

/// Recomputes result.statistics from result.samples_us (no bootstrap interval
/// unless options ask for one). Throws tunekit::invalid_argument for no samples.
void summarize_result(measurement_result& result, const summary_options& options = {0, 0.95, 0});

/// The params as one canonical JSON object text: keys sorted, no spaces, and
/// integral floats written as integers (128.0 and 128 are the same value).
/// Two results describe the same configuration when name and this agree.
/// Throws tunekit::invalid_argument when a value is not JSON.
[[nodiscard]] std::string canonical_params(const measurement_result& result);

/// The whole file as JSON, every sample included. The writers compute the
/// statistics from samples_us, whatever `statistics` holds, and throw
/// tunekit::invalid_argument for a result without samples (or with a
/// non-finite one) and for device, telemetry, throughput or a param value
/// that is not JSON of the right kind.
void write_json(const result_file& file, std::ostream& out);
/// One CSV row per result (RFC 4180 quoting): name, params (JSON text), count,
/// median_us, mean_us, stddev_us, cv, min_us, max_us, p99_us.
void write_csv(const result_file& file, std::ostream& out);
/// A GitHub-flavoured Markdown table with the CSV's columns.
void write_markdown(const result_file& file, std::ostream& out);

/// Parses a result file's text. `source` names it in error messages. Throws
/// tunekit::invalid_argument with one line naming the source and what is
/// wrong: "'base.json': results[2].samples_us[5]: expected a number, got string".
[[nodiscard]] result_file parse_result_file(std::string_view text, std::string_view source);
/// Reads and parses the file at `path` (the path names it in errors).
[[nodiscard]] result_file read_result_file(const std::string& path);
/// Writes the JSON to `path`, replacing it. Throws tunekit::error when it cannot.
void save_result_file(const result_file& file, const std::string& path);

// ---------------------------------------------------------------- comparison

enum class verdict {
  same,    ///< no change beyond the threshold, and the data show it
  faster,  ///< new is faster by more than the threshold, significantly
  slower,  ///< new is slower by more than the threshold, significantly
  unsure,  ///< neither can be shown: too few or too noisy samples
};

/// "SAME", "FASTER", "SLOWER", "UNSURE".
[[nodiscard]] std::string_view to_string(verdict value);

/// How compare() judges. The defaults are justified at compare().
struct compare_options {
  double threshold = 0.02;           ///< smallest relative change of the median that matters, in (0, 1)
  double alpha = 0.01;               ///< one-sided level of the test for a change, per direction
  double equivalence_alpha = 0.05;   ///< one-sided level of each test for "no change beyond threshold"
};

/// One result present in both files.
struct compared_pair {
  std::string name;
  std::string params;  ///< canonical_params()
  summary base;
  summary current;
  double change = 0.0;   ///< current median / base median - 1; +inf when base median is 0
  double p_value = 1.0;  ///< two-sided Mann-Whitney p-value, base against current
  double p_slower = 1.0;  ///< one-sided, against "current is slower"
  double p_faster = 1.0;  ///< one-sided, against "current is faster"
  verdict outcome = verdict::unsure;
};

/// A result present in one file only.
struct unmatched_result {
  std::string name;
  std::string params;  ///< canonical_params()
};

struct comparison {
  std::vector<compared_pair> pairs;  ///< sorted by change, largest slowdown first
  std::vector<unmatched_result> only_in_base;
  std::vector<unmatched_result> only_in_new;
};

/// Matches results by name and canonical params and judges each pair:
///
///   SLOWER  change > +threshold and the Mann-Whitney test rejects "current
///           is not slower" at alpha (one-sided);
///   FASTER  the mirror image: change < -threshold, rejected at alpha;
///   SAME    |change| <= threshold and two one-sided tests show the change
///           lies within the threshold: current is significantly faster than
///           base scaled by (1 + threshold) and significantly slower than base
///           scaled by (1 - threshold), each at equivalence_alpha;
///   UNSURE  everything else: a change beyond the threshold the test cannot
///           tell from noise, or a small change the data cannot vouch for.
///
/// Why: a regression gate must not cry wolf, so SLOWER needs both a change
/// that matters (the threshold; noise alone rarely moves a median by 2%) and
/// statistical evidence (alpha = 1% per direction bounds false SLOWER below
/// 1% for any noise level, since both must hold). Calling a pair SAME is
/// also a claim, that nothing beyond the threshold changed, so it gets its
/// own test (the usual 5% level of an equivalence test) instead of being
/// whatever is not SLOWER; pairs too noisy for either claim are UNSURE, which
/// tells the user to measure more instead of hiding a possible regression.
/// Scaling the base samples models timing noise as multiplicative. Rank
/// tests need no normality and shrug off the outliers timings have.
/// Small samples: see mann_whitney(); with 3 samples a side no test can
/// reject at 1% and the verdict is UNSURE (or SAME only if equivalence can
/// be shown, which needs more samples too).
///
/// Throws tunekit::invalid_argument for a threshold outside (0, 1), alpha
/// outside (0, 1), or a name and params repeated within one file.
[[nodiscard]] comparison compare(const result_file& base, const result_file& current,
                                 const compare_options& options = {});

/// Judges one pair of sample sets as compare() does.
[[nodiscard]] compared_pair compare_samples(std::span<const double> base, std::span<const double> current,
                                            const compare_options& options = {});

}  // namespace tunekit::measure
