// detail::parse_json (src/io/strict_json.h), the one JSON parser of every
// reader: the whole text or an error naming the byte; Python's non-finite
// tokens only where asked for (scheduler configs, as diffusers writes them).
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "ddpm/error.h"
#include "ddpm/predictor.h"
#include "ddpm/scheduler_config.h"
#include "io/strict_json.h"

namespace ddpm {
namespace {

using namespace std::literals;
using detail::parse_json;

std::string error_of(std::string_view text, detail::JsonOptions options = {}) {
  try {
    parse_json(text, "test.json", options);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(StrictJson, TheWholeTextOrAnErrorNamingTheByte) {
  EXPECT_EQ(parse_json(" {\"a\": [1, 2]} \t\r\n", "x")["a"][1], 2);
  EXPECT_EQ(error_of("{\"a\": 1} x").rfind("test.json is not valid JSON at byte 9: ", 0), 0u)
      << error_of("{\"a\": 1} x");
  EXPECT_EQ(error_of("{\"a\": 1} {}").rfind("test.json is not valid JSON at byte 9: ", 0), 0u)
      << error_of("{\"a\": 1} {}");
  EXPECT_EQ(error_of("{\"a\": "), "test.json is not valid JSON at byte 6: syntax error while "
                                  "parsing value - unexpected end of input; expected '[', '{', or "
                                  "a literal");
}

TEST(StrictJson, ANulByteAnywhereIsRefusedButAnEscapedOneIsText) {
  EXPECT_EQ(error_of("{\"a\": 1}\0 garbage"sv),
            "test.json is not valid JSON at byte 8: a NUL byte (JSON text has none; nothing may "
            "follow the value but whitespace)");
  EXPECT_NE(error_of("{\"a\": \"x\0y\"}"sv).find("at byte 8: a NUL byte"), std::string::npos);
  EXPECT_EQ(parse_json("{\"a\": \"x\\u0000y\"}", "x")["a"].get<std::string>(), "x\0y"sv);
}

TEST(StrictJson, PythonNonFiniteTokensOnlyWhenAskedFor) {
  const detail::JsonOptions python{.python_nonfinite = true};
  const nlohmann::json j = parse_json(
      R"({"a": -Infinity, "b": [Infinity, 1.5, NaN, -2], "c": "NaN -Infinity", "d": 3})", "x",
      python);
  EXPECT_EQ(j["a"].get<double>(), -INFINITY);
  EXPECT_EQ(j["b"][0].get<double>(), INFINITY);
  EXPECT_EQ(j["b"][1].get<double>(), 1.5);
  EXPECT_TRUE(std::isnan(j["b"][2].get<double>()));
  EXPECT_EQ(j["b"][3].get<double>(), -2);
  EXPECT_EQ(j["c"], "NaN -Infinity");  // text in strings stays text
  EXPECT_EQ(j["d"], 3);
  // Byte offsets stay those of the text given.
  EXPECT_NE(error_of(R"([NaN, x])", python).find("at byte 6:"), std::string::npos)
      << error_of(R"([NaN, x])", python);
  // Only as whole values: glued to other tokens or signed otherwise, refused.
  for (const char* text : {"[1Infinity]", "[-NaN]", "[NaNx]", "[Infinity1]", "{NaN: 1}",
                           "[\"a\" NaN]"}) {
    EXPECT_NE(error_of(text, python), "") << text;
  }
  // Without the option, RFC 8259: no such tokens.
  EXPECT_NE(error_of(R"({"a": -Infinity})").find("at byte 7:"), std::string::npos)
      << error_of(R"({"a": -Infinity})");
}

TEST(StrictJson, SchedulerConfigsAndMixtureSpecsReadTheWholeText) {
  const std::string config = R"({"_class_name": "DDIMScheduler"})";
  EXPECT_NO_THROW(SchedulerConfig::from_json(config + " \n"));
  EXPECT_THROW(SchedulerConfig::from_json(config + "\0 garbage"s), Error);
  EXPECT_THROW(SchedulerConfig::from_json(config + " garbage"), Error);
  const SchedulerConfig dpm = SchedulerConfig::from_json(
      R"({"_class_name": "DPMSolverMultistepScheduler", "lambda_min_clipped": -Infinity})");
  EXPECT_EQ(dpm.sampler, SamplerKind::dpmpp_2m);

  const std::string spec = R"({"weights": [1], "means": [[0]], "stds": [1]})";
  EXPECT_NO_THROW(GmmSpec::from_json(spec));
  EXPECT_THROW(GmmSpec::from_json(spec + "\0garbage"s), Error);
  EXPECT_THROW(GmmSpec::from_json(R"({"weights": [1], "means": [[NaN]], "stds": [1]})"), Error);
}

}  // namespace
}  // namespace ddpm
