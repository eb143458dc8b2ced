#include "tunekit/expression.hpp"

#include <gtest/gtest.h>

#include "tunekit/error.hpp"

TEST(Expression, CLikeOperatorsAndFunctions) {
  tunekit::variable_table names{{"MWG", 64}, {"MDIMC", 8}, {"VWM", 2}, {"n", 1000}};
  auto value = [&](const char* text) { return tunekit::expression(text, names).evaluate(); };
  EXPECT_EQ(value("MWG % (MDIMC*VWM) == 0"), 1.0);
  EXPECT_EQ(value("MWG % 48"), 16.0);
  EXPECT_EQ(value("MWG*MDIMC <= 1024 && !(VWM > 4)"), 1.0);
  EXPECT_EQ(value("MWG > 100 || VWM == 2"), 1.0);
  EXPECT_EQ(value("!(MWG == 64)"), 0.0);
  EXPECT_EQ(value("min(MWG, MDIMC, VWM)"), 2.0);
  EXPECT_EQ(value("max(MWG, n)"), 1000.0);
  EXPECT_EQ(value("ceil(n / MWG)"), 16.0);
  EXPECT_EQ(value("floor(n / MWG)"), 15.0);
  EXPECT_EQ(value("MWG != 64 ? 1 : 2"), 2.0);
}

TEST(Expression, TracksTheVariablesItReads) {
  tunekit::variable_table names{{"a", 1}, {"b", 2}, {"c", 3}};
  const tunekit::expression rule("c > a", names);
  EXPECT_EQ(rule.used_slots(), (std::vector<std::size_t>{0, 2}));
  names.set("c", 0);
  EXPECT_EQ(rule.evaluate(), 0.0);
}

TEST(Expression, UnknownNamesAndSyntaxErrorsAreInvalidArgumentsNamingTheExpression) {
  tunekit::variable_table names{{"a", 1}};
  try {
    (void)tunekit::expression("a + nope", names);
    FAIL();
  } catch (const tunekit::invalid_argument& error) {
    EXPECT_NE(std::string(error.what()).find("a + nope"), std::string::npos);
  }
  EXPECT_THROW((void)tunekit::expression("a +", names), tunekit::invalid_argument);
  EXPECT_THROW((void)tunekit::expression("(a", names), tunekit::invalid_argument);
  EXPECT_THROW((void)tunekit::expression("", names), tunekit::invalid_argument);
}
