// bayes_opt: Bayesian optimisation with a Gaussian process.
//
// Model. A GP over the configurations' normalised coordinates (each
// parameter's value position scaled to [0,1]) with a Matérn-5/2 kernel of one
// length scale, on log(objective). Failed configurations are learned from:
// they enter the model at the worst value seen, so the search avoids their
// neighbourhood. The amplitude is profiled out: with the correlation matrix
// R + λI = LLᵀ, the posterior mean at c is m + r_cᵀ L⁻ᵀ L⁻¹ (y − m), the
// variance s²(1 − |L⁻¹ r_c|²).
//
// Cost. Every configuration keeps v_c = L⁻¹ r_c as one column per observation,
// extended by one entry per new observation (O(configurations × observations)
// per proposal, no cubic solve), and the three vectors the mean needs are
// accumulated the same way. The length scale and λ are refitted by maximum
// marginal likelihood on a grid at geometric checkpoints only, rebuilding
// the columns then.
//
// Acquisition. Expected improvement (no margin: on the recorded spaces a
// margin or a share of random proposals only lost), scored on every
// unevaluated configuration still in the model. The first 10 proposals are
// uniform random.

#include <Eigen/Cholesky>
#include <Eigen/Core>

#include <algorithm>
#include <array>
#include <cmath>
#include <functional>
#include <limits>

#include "strategies/registry.hpp"

namespace tunekit::strategies {

namespace {

constexpr std::size_t initial_samples = 10;
// Past this many configurations the model scores a fixed random subset of
// them (memory: 4 bytes × candidates × observations).
constexpr std::size_t max_candidates = 32768;
constexpr std::size_t last_refit = 256;
constexpr double prune_sigmas = 3.0;
constexpr std::size_t min_candidates = 512;  // candidates this many σ behind the incumbent leave the model
constexpr std::array<double, 7> length_scales{0.08, 0.12, 0.18, 0.27, 0.4, 0.6, 0.9};
constexpr std::array<double, 3> noise_ratios{1e-4, 1e-3, 1e-2};

double matern52(double squared_distance, double length_scale) {
  const double r = std::sqrt(5.0 * squared_distance) / length_scale;
  return (1.0 + r + r * r / 3.0) * std::exp(-r);
}

double normal_pdf(double z) { return 0.3989422804014327 * std::exp(-0.5 * z * z); }
double normal_cdf(double z) { return 0.5 * std::erfc(-z * 0.7071067811865476); }

class bayes_opt final : public strategy {
  std::string_view do_name() const override { return "bayes_opt"; }

  void do_start() override {
    const std::size_t count = space().size();
    dimensions_ = space().parameters().size();
    coordinates_.resize(count * dimensions_);
    for (std::size_t i = 0; i < count; ++i) {
      const auto point = space().coordinates(i);
      std::copy(point.begin(), point.end(), coordinates_.begin() + static_cast<std::ptrdiff_t>(i * dimensions_));
    }
    candidates_.resize(count);
    for (std::size_t i = 0; i < count; ++i) candidates_[i] = i;
    if (count > max_candidates) {  // partial Fisher-Yates: a uniform subset
      for (std::size_t i = 0; i < max_candidates; ++i) std::swap(candidates_[i], candidates_[i + uniform_index(count - i)]);
      candidates_.resize(max_candidates);
      std::sort(candidates_.begin(), candidates_.end());
    }
    scored_ = candidates_;
    observed_.clear();
    log_values_.clear();
    failed_.clear();
    length_scale_ = 0.27;
    noise_ratio_ = 1e-3;
    next_refit_ = initial_samples;
    reset_model();
  }

  std::optional<std::size_t> do_propose() override {
    std::size_t ok_count = 0;
    for (std::uint8_t failed : failed_) ok_count += failed == 0;
    if (ok_count < 2 || observed_.size() < initial_samples) return random_unevaluated();
    if (auto chosen = best_expected_improvement()) return chosen;
    // Every candidate left in the model is evaluated: bring back a sample of
    // the pruned ones (O(observations²) each, not a rebuild of all).
    if (!readmit(min_candidates)) return std::nullopt;  // none left to score: the base picks
    return best_expected_improvement();
  }

  void do_observe(std::size_t index, const evaluation_result& outcome) override {
    observed_.push_back(index);
    const bool ok = outcome.ok() && std::isfinite(outcome.value) && outcome.value > 0.0;
    failed_.push_back(ok ? 0 : 1);
    log_values_.push_back(ok ? std::log(outcome.value) : 0.0);
    if (observed_.size() >= next_refit_ && observed_.size() <= last_refit) {
      next_refit_ = observed_.size() * 2;
      refit();
    } else {
      extend_model(observed_.size() - 1);
    }
  }

  [[nodiscard]] double squared_distance(std::size_t a, std::size_t b) const {
    const double* x = &coordinates_[a * dimensions_];
    const double* y = &coordinates_[b * dimensions_];
    double sum = 0.0;
    for (std::size_t d = 0; d < dimensions_; ++d) sum += (x[d] - y[d]) * (x[d] - y[d]);
    return sum;
  }

  // Every candidate back in the model (the columns are rebuilt after this).
  void reset_model() {
    candidates_ = scored_;
    const std::size_t count = candidates_.size();
    cholesky_.resize(0, 0);
    columns_.clear();
    explained_.assign(count, 0.0F);
    accumulated_ok_.assign(count, 0.0);
    accumulated_failed_.assign(count, 0.0);
    accumulated_ones_.assign(count, 0.0);
    solved_ok_.clear();
    solved_failed_.clear();
    solved_ones_.clear();
  }

  // Adds observation `n` (observed_[n]) to the factor and to every column.
  void extend_model(std::size_t n) {
    const std::size_t point = observed_[n];
    Eigen::VectorXd row(static_cast<Eigen::Index>(n));
    for (std::size_t j = 0; j < n; ++j)
      row[static_cast<Eigen::Index>(j)] = matern52(squared_distance(point, observed_[j]), length_scale_);
    if (n > 0)
      cholesky_.topLeftCorner(static_cast<Eigen::Index>(n), static_cast<Eigen::Index>(n))
          .triangularView<Eigen::Lower>()
          .solveInPlace(row);
    const double diagonal = std::sqrt(std::max(1.0 + noise_ratio_ - row.squaredNorm(), 1e-9));
    cholesky_.conservativeResize(static_cast<Eigen::Index>(n + 1), static_cast<Eigen::Index>(n + 1));
    cholesky_.row(static_cast<Eigen::Index>(n)).head(static_cast<Eigen::Index>(n)) = row.transpose();
    cholesky_.col(static_cast<Eigen::Index>(n)).head(static_cast<Eigen::Index>(n)).setZero();
    cholesky_(static_cast<Eigen::Index>(n), static_cast<Eigen::Index>(n)) = diagonal;

    // Forward substitution, one more entry of L⁻¹y, L⁻¹f, L⁻¹1.
    const auto solve_next = [&](std::vector<double>& solved, double value) {
      double sum = value;
      for (std::size_t j = 0; j < n; ++j) sum -= row[static_cast<Eigen::Index>(j)] * solved[j];
      solved.push_back(sum / diagonal);
    };
    solve_next(solved_ok_, failed_[n] ? 0.0 : log_values_[n]);
    solve_next(solved_failed_, failed_[n] ? 1.0 : 0.0);
    solve_next(solved_ones_, 1.0);

    const std::size_t count = candidates_.size();
    std::vector<float> column(count);
    for (std::size_t c = 0; c < count; ++c)
      column[c] = static_cast<float>(matern52(squared_distance(candidates_[c], point), length_scale_));
    for (std::size_t j = 0; j < n; ++j) {
      const auto weight = static_cast<float>(row[static_cast<Eigen::Index>(j)]);
      const float* previous = columns_[j].data();
      for (std::size_t c = 0; c < count; ++c) column[c] -= weight * previous[c];
    }
    const auto inverse = static_cast<float>(1.0 / diagonal);
    const double ok_weight = solved_ok_.back(), failed_weight = solved_failed_.back(),
                 ones_weight = solved_ones_.back();
    for (std::size_t c = 0; c < count; ++c) {
      const float v = column[c] * inverse;
      column[c] = v;
      explained_[c] += v * v;
      accumulated_ok_[c] += ok_weight * v;
      accumulated_failed_[c] += failed_weight * v;
      accumulated_ones_[c] += ones_weight * v;
    }
    columns_.push_back(std::move(column));
  }

  // Failed observations stand at the worst ok value seen, a little beyond.
  [[nodiscard]] double failure_value() const {
    double worst = -std::numeric_limits<double>::infinity();
    double best = std::numeric_limits<double>::infinity();
    for (std::size_t j = 0; j < observed_.size(); ++j)
      if (!failed_[j]) {
        worst = std::max(worst, log_values_[j]);
        best = std::min(best, log_values_[j]);
      }
    return worst + 0.1 * (worst - best);
  }

  [[nodiscard]] Eigen::VectorXd targets() const {
    const double failure = failure_value();
    Eigen::VectorXd y(static_cast<Eigen::Index>(observed_.size()));
    for (std::size_t j = 0; j < observed_.size(); ++j)
      y[static_cast<Eigen::Index>(j)] = failed_[j] ? failure : log_values_[j];
    return y;
  }

  // Maximum marginal likelihood over the grid, amplitude and mean profiled out.
  void refit() {
    const auto n = static_cast<Eigen::Index>(observed_.size());
    const Eigen::VectorXd y = targets();
    const Eigen::VectorXd centred = y.array() - y.mean();
    Eigen::MatrixXd distances(n, n);
    for (Eigen::Index a = 0; a < n; ++a)
      for (Eigen::Index b = 0; b <= a; ++b)
        distances(a, b) = distances(b, a) =
            squared_distance(observed_[static_cast<std::size_t>(a)], observed_[static_cast<std::size_t>(b)]);
    double best_likelihood = -std::numeric_limits<double>::infinity();
    for (double scale : length_scales)
      for (double noise : noise_ratios) {
        Eigen::MatrixXd correlation(n, n);
        for (Eigen::Index a = 0; a < n; ++a)
          for (Eigen::Index b = 0; b <= a; ++b)
            correlation(a, b) = correlation(b, a) = matern52(distances(a, b), scale) + (a == b ? noise : 0.0);
        const Eigen::LLT<Eigen::MatrixXd> factor(correlation);
        if (factor.info() != Eigen::Success) continue;
        const Eigen::VectorXd whitened = factor.matrixL().solve(centred);
        const double amplitude = std::max(whitened.squaredNorm() / static_cast<double>(n), 1e-12);
        const double log_determinant = 2.0 * factor.matrixLLT().diagonal().array().log().sum();
        const double likelihood = -0.5 * static_cast<double>(n) * std::log(amplitude) - 0.5 * log_determinant;
        if (likelihood > best_likelihood) {
          best_likelihood = likelihood;
          length_scale_ = scale;
          noise_ratio_ = noise;
        }
      }
    rebuild();
  }

  void rebuild() {
    reset_model();
    for (std::size_t j = 0; j < observed_.size(); ++j) extend_model(j);
  }

  [[nodiscard]] std::optional<std::size_t> best_expected_improvement() {
    const Eigen::VectorXd y = targets();
    const double mean = y.mean();
    const double failure = failure_value();
    // Amplitude from the whitened residuals: s² = |L⁻¹(y − m)|² / n.
    double amplitude = 0.0;
    for (std::size_t j = 0; j < observed_.size(); ++j) {
      const double w = solved_ok_[j] + failure * solved_failed_[j] - mean * solved_ones_[j];
      amplitude += w * w;
    }
    const double scale = std::sqrt(std::max(amplitude / static_cast<double>(observed_.size()), 1e-12));
    double incumbent = std::numeric_limits<double>::infinity();
    for (std::size_t j = 0; j < observed_.size(); ++j)
      if (!failed_[j]) incumbent = std::min(incumbent, log_values_[j]);

    std::optional<std::size_t> chosen;
    double best_score = -1.0;
    double best_z = -std::numeric_limits<double>::infinity();
    std::vector<double> standing(candidates_.size(), -std::numeric_limits<double>::infinity());
    for (std::size_t c = 0; c < candidates_.size(); ++c) {
      if (evaluated(candidates_[c])) continue;
      const double mu = mean + accumulated_ok_[c] + failure * accumulated_failed_[c] - mean * accumulated_ones_[c];
      const double sigma = scale * std::sqrt(std::max(1.0 - static_cast<double>(explained_[c]), 1e-12));
      const double gain = incumbent - mu;
      const double z = gain / sigma;
      standing[c] = z;
      const double score = gain * normal_cdf(z) + sigma * normal_pdf(z);
      // Far behind, EI underflows to zero for all: then the best z decides.
      if (score > best_score || (score == best_score && z > best_z)) {
        best_score = score;
        best_z = z;
        chosen = candidates_[c];
      }
    }
    prune(standing);
    return chosen;
  }

  // Hopeless candidates leave the model: further data only shrink σ until the
  // next refit, so one more than `prune_sigmas` σ behind the incumbent is
  // (nearly) never chosen. The `min_candidates` best by z always stay.
  void prune(const std::vector<double>& standing) {
    std::vector<std::uint8_t> keep(candidates_.size(), 0);
    std::size_t kept = 0;
    for (std::size_t c = 0; c < candidates_.size(); ++c)
      if (standing[c] >= -prune_sigmas) {
        keep[c] = 1;
        ++kept;
      }
    if (kept < min_candidates) {
      std::vector<double> sorted = standing;
      const std::size_t rank = std::min(min_candidates, sorted.size()) - 1;
      std::nth_element(sorted.begin(), sorted.begin() + static_cast<std::ptrdiff_t>(rank), sorted.end(),
                       std::greater<>());
      const double threshold = sorted[rank];
      kept = 0;
      for (std::size_t c = 0; c < candidates_.size(); ++c) {
        keep[c] = std::isfinite(standing[c]) && (standing[c] >= threshold || keep[c]) ? 1 : 0;
        kept += keep[c];
      }
    }
    if ((candidates_.size() - kept) * 4 > candidates_.size()) compact(keep);
  }

  // Puts up to `count` unevaluated configurations that were pruned back into
  // the model, chosen uniformly; false when there is none.
  bool readmit(std::size_t count) {
    std::vector<std::uint8_t> in_model(space().size(), 0);
    for (std::size_t c : candidates_) in_model[c] = 1;
    std::vector<std::size_t> outside;
    for (std::size_t c : scored_)
      if (!in_model[c] && !evaluated(c)) outside.push_back(c);
    if (outside.empty()) return false;
    count = std::min(count, outside.size());
    for (std::size_t i = 0; i < count; ++i) std::swap(outside[i], outside[i + uniform_index(outside.size() - i)]);
    const auto n = static_cast<Eigen::Index>(observed_.size());
    Eigen::VectorXd column(n);
    for (std::size_t i = 0; i < count; ++i) {
      const std::size_t c = outside[i];
      for (Eigen::Index j = 0; j < n; ++j)
        column[j] = matern52(squared_distance(c, observed_[static_cast<std::size_t>(j)]), length_scale_);
      cholesky_.triangularView<Eigen::Lower>().solveInPlace(column);
      double explained = 0.0, ok = 0.0, failed = 0.0, ones = 0.0;
      for (Eigen::Index j = 0; j < n; ++j) {
        const auto v = static_cast<float>(column[j]);
        const auto row = static_cast<std::size_t>(j);
        columns_[row].push_back(v);
        explained += static_cast<double>(v) * v;
        ok += solved_ok_[row] * v;
        failed += solved_failed_[row] * v;
        ones += solved_ones_[row] * v;
      }
      candidates_.push_back(c);
      explained_.push_back(static_cast<float>(explained));
      accumulated_ok_.push_back(ok);
      accumulated_failed_.push_back(failed);
      accumulated_ones_.push_back(ones);
    }
    return true;
  }

  // Drops the candidate rows `keep` marks 0 from every per-candidate array.
  void compact(const std::vector<std::uint8_t>& keep) {
    const auto filter = [&keep](auto& values) {
      std::size_t out = 0;
      for (std::size_t c = 0; c < keep.size(); ++c)
        if (keep[c]) values[out++] = values[c];
      values.resize(out);
    };
    filter(candidates_);
    filter(explained_);
    filter(accumulated_ok_);
    filter(accumulated_failed_);
    filter(accumulated_ones_);
    for (auto& column : columns_) filter(column);
  }

  std::size_t dimensions_ = 0;
  std::vector<double> coordinates_;      ///< configurations × dimensions
  std::vector<std::size_t> scored_;      ///< the configurations the model may score
  std::vector<std::size_t> candidates_;  ///< those still in the model: the rows below
  std::vector<std::size_t> observed_;    ///< configuration of each observation, in order
  std::vector<double> log_values_;       ///< log(objective) of each ok observation
  std::vector<std::uint8_t> failed_;
  double length_scale_ = 0.27;
  double noise_ratio_ = 1e-3;
  std::size_t next_refit_ = initial_samples;

  Eigen::MatrixXd cholesky_;                 ///< L, lower, observations × observations
  std::vector<std::vector<float>> columns_;  ///< columns_[j][c] = (L⁻¹ r_c)_j for candidate c
  std::vector<float> explained_;             ///< |L⁻¹ r_c|²
  std::vector<double> accumulated_ok_;       ///< v_c · L⁻¹ y_ok (failed entries zero)
  std::vector<double> accumulated_failed_;   ///< v_c · L⁻¹ f (f: 1 where failed)
  std::vector<double> accumulated_ones_;     ///< v_c · L⁻¹ 1
  std::vector<double> solved_ok_, solved_failed_, solved_ones_;
};

}  // namespace

std::unique_ptr<strategy> make_bayes_opt() { return std::make_unique<bayes_opt>(); }

}  // namespace tunekit::strategies
