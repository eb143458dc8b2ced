#include "tunekit/search_space.hpp"

#include <gtest/gtest.h>

#include <random>
#include <set>

#include "tunekit/error.hpp"

namespace {

std::vector<tunekit::parameter_value> integers(std::initializer_list<std::int64_t> values) {
  return {values.begin(), values.end()};
}

tunekit::space_definition small_definition() {
  tunekit::space_definition definition;
  definition.parameters = {{"block_size_x", integers({16, 32, 64, 128, 256})},
                           {"block_size_y", integers({1, 2, 4, 8})},
                           {"tile", integers({1, 2, 3, 4})}};
  definition.constraints = {"block_size_x*block_size_y <= 256", "tile <= block_size_y || tile == 1"};
  return definition;
}

// The reference: the full product filtered, the way we must not enumerate.
std::vector<tunekit::configuration> filtered_product(const tunekit::space_definition& definition) {
  std::vector<tunekit::configuration> valid;
  for (std::uint32_t x = 0; x < 5; ++x)
    for (std::uint32_t y = 0; y < 4; ++y)
      for (std::uint32_t t = 0; t < 4; ++t) {
        const auto bx = std::get<std::int64_t>(definition.parameters[0].values[x]);
        const auto by = std::get<std::int64_t>(definition.parameters[1].values[y]);
        const auto tile = std::get<std::int64_t>(definition.parameters[2].values[t]);
        if (bx * by <= 256 && (tile <= by || tile == 1)) valid.push_back({{x, y, t}});
      }
  return valid;
}

}  // namespace

TEST(SearchSpace, EnumeratesExactlyTheValidConfigurationsInOrder) {
  const auto definition = small_definition();
  const auto space = tunekit::search_space::enumerate(definition);
  const auto expected = filtered_product(definition);
  ASSERT_EQ(space.size(), expected.size());
  for (std::size_t i = 0; i < space.size(); ++i) {
    EXPECT_EQ(space.at(i), expected[i]) << space.describe(i);
    EXPECT_EQ(space.find(expected[i]), i);
  }
  EXPECT_DOUBLE_EQ(space.cartesian_size(), 80.0);
  EXPECT_FALSE(space.find({{4, 3, 0}}).has_value());  // 256×8 is invalid
}

TEST(SearchSpace, PredicatesAndConstantsConstrainToo) {
  auto definition = small_definition();
  definition.constraints.push_back("block_size_x <= n / 4");
  definition.constants["n"] = 512;
  definition.predicates.push_back({{"tile", "block_size_x"}, [](std::span<const double> v) { return v[0] != 3 || v[1] == 16; }});
  const auto space = tunekit::search_space::enumerate(definition);
  for (std::size_t i = 0; i < space.size(); ++i) {
    const auto config = space.at(i);
    const auto bx = std::get<std::int64_t>(definition.parameters[0].values[config.value_indices[0]]);
    const auto tile = std::get<std::int64_t>(definition.parameters[2].values[config.value_indices[2]]);
    EXPECT_LE(bx, 128);
    EXPECT_TRUE(tile != 3 || bx == 16);
  }
  EXPECT_GT(space.size(), 0u);
  EXPECT_LT(space.size(), tunekit::search_space::enumerate(small_definition()).size());
}

TEST(SearchSpace, AlwaysFalseConstraintGivesAnEmptySpace) {
  auto definition = small_definition();
  definition.constraints.push_back("n < 0");
  definition.constants["n"] = 1;
  EXPECT_TRUE(tunekit::search_space::enumerate(definition).empty());
}

TEST(SearchSpace, BadDefinitionsAreInvalidArguments) {
  auto definition = small_definition();
  definition.constraints.push_back("block_size_z > 1");
  EXPECT_THROW((void)tunekit::search_space::enumerate(definition), tunekit::invalid_argument);
  definition = small_definition();
  definition.parameters.push_back({"tile", integers({1})});
  EXPECT_THROW((void)tunekit::search_space::enumerate(definition), tunekit::invalid_argument);
  definition = small_definition();
  definition.parameters[0].values.clear();
  EXPECT_THROW((void)tunekit::search_space::enumerate(definition), tunekit::invalid_argument);
  EXPECT_THROW((void)tunekit::search_space::enumerate({}), tunekit::invalid_argument);
}

TEST(SearchSpace, NeighbourhoodsStayInsideTheValidSet) {
  const auto space = tunekit::search_space::enumerate(small_definition());
  for (std::size_t i = 0; i < space.size(); ++i) {
    const auto here = space.at(i);
    for (auto kind : {tunekit::neighbourhood::hamming, tunekit::neighbourhood::adjacent}) {
      const auto near = space.neighbours(i, kind);
      std::set<std::size_t> unique(near.begin(), near.end());
      EXPECT_EQ(unique.size(), near.size());
      for (auto j : near) {
        const auto there = space.at(j);
        int changed = 0;
        for (std::size_t p = 0; p < 3; ++p) {
          if (here.value_indices[p] == there.value_indices[p]) continue;
          ++changed;
          if (kind == tunekit::neighbourhood::adjacent) {
            const auto step = static_cast<int>(here.value_indices[p]) - static_cast<int>(there.value_indices[p]);
            EXPECT_EQ(std::abs(step), 1);
          }
        }
        EXPECT_EQ(changed, 1);
      }
    }
  }
  // Hamming neighbours of (16,1,1): every valid single change.
  const auto origin = *space.find({{0, 0, 0}});
  EXPECT_EQ(space.neighbours(origin, tunekit::neighbourhood::hamming).size(), 4u + 3u + 0u);
  EXPECT_EQ(space.neighbours(origin, tunekit::neighbourhood::adjacent).size(), 2u);
}

TEST(SearchSpace, FromConfigurationsKeepsExactlyThoseSortedAndUnique) {
  std::vector<tunekit::parameter> parameters{{"a", integers({1, 2, 3})}, {"b", {std::string("x"), std::string("y")}}};
  const auto space = tunekit::search_space::from_configurations(parameters, {{{2, 1}}, {{0, 0}}, {{2, 1}}});
  ASSERT_EQ(space.size(), 2u);
  EXPECT_EQ(space.describe(0), "a=1, b=x");
  EXPECT_EQ(space.describe(1), "a=3, b=y");
  EXPECT_EQ(space.coordinates(1), (std::vector<double>{1.0, 1.0}));
  EXPECT_THROW((void)tunekit::search_space::from_configurations(parameters, {{{3, 0}}}), tunekit::invalid_argument);
}

TEST(ParameterValue, PrintsShortestForms) {
  EXPECT_EQ(tunekit::to_string(tunekit::parameter_value{std::int64_t{64}}), "64");
  EXPECT_EQ(tunekit::to_string(tunekit::parameter_value{0.5}), "0.5");
  EXPECT_EQ(tunekit::to_string(tunekit::parameter_value{std::string("true")}), "true");
}
