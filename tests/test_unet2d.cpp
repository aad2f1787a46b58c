// diffusers' UNet2DModel on the CPU against diffusers 0.42.1 itself: the
// fixtures of scripts/make_unet_fixtures.py (tests/data/diffusers/unet/,
// README.md there), the trained digits model's sampling loops
// (tests/data/diffusers/digits_unet_loops.safetensors), and the refusals of
// every hostile folder.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "ddpm/error.h"
#include "ddpm/sampler.h"
#include "ddpm/scheduler_config.h"
#include "ddpm/unet2d.h"
#include "io/safetensors.h"
#include "io/strict_json.h"
#include "predictors/networks/unet2d/unet2d_config.h"
#include "predictors/networks/unet2d/unet2d_folder.h"
#include "predictors/networks/unet2d/unet2d_host.h"
#include "predictors/networks/unet2d/unet2d_network.h"
#include "scratch_dir.h"
#include "test_support.h"

namespace ddpm {
namespace {

using detail::SafetensorsFile;

const std::string kFixtures = std::string(DDPM_TEST_DATA_DIR) + "/diffusers/unet/";

// The network of a fixture folder, read as the predictor reads it.
detail::UNet2DNetwork network_of(const std::string& folder, const std::string& variant = "") {
  const detail::UNet2DFiles files = detail::find_unet2d_files(kFixtures + folder);
  return detail::load_unet2d_network(detail::read_unet2d_config(files.config),
                                     detail::find_unet2d_weights(files, variant));
}

struct Case {
  std::vector<float> sample;
  std::vector<std::int64_t> shape;  // [B, C, H, W]
  std::vector<float> times;         // per row
  std::vector<std::int32_t> labels; // per row, or empty
  std::vector<double> output;
};

Case case_of(const SafetensorsFile& cases, int k, const std::string& output = "output") {
  const std::string name = "case_" + std::to_string(k);
  Case c;
  const auto& sample = cases.at(name + ".sample");
  c.sample = sample.to_floats();
  c.shape = sample.shape;
  const std::vector<float> t = cases.at(name + ".timestep").to_floats();
  c.times.assign(static_cast<std::size_t>(c.shape[0]), t[0]);
  if (t.size() > 1) c.times = t;
  if (const auto* labels = cases.find(name + ".class_labels")) {
    for (float l : labels->to_floats()) c.labels.push_back(static_cast<std::int32_t>(l));
  }
  const std::string key = output.find('.') == std::string::npos ? name + "." + output
                                                                : output.substr(0, output.find('.') + 1) + name +
                                                                      output.substr(output.find('.'));
  for (float v : cases.at(key).to_floats()) c.output.push_back(v);
  return c;
}

std::vector<float> forward(const detail::UNet2DNetwork& net, const Case& c, int threads = 2) {
  detail::UNet2DInput in;
  in.x = c.sample.data();
  in.batch = c.shape[0];
  in.height = c.shape[2];
  in.width = c.shape[3];
  in.times = c.times.data();
  in.labels = c.labels.empty() ? nullptr : c.labels.data();
  const std::int64_t out_size = in.batch * net.config.out_channels * in.height * in.width;
  std::vector<float> out = test::poisoned(static_cast<std::size_t>(out_size));
  detail::unet2d_forward_host(net, in, out.data(), threads);
  return out;
}

constexpr int kCases = 6;
const char* const kModels[] = {"basic",        "ddpm_cifar_like",       "class_scale_shift",
                               "heads_no_mid_attention", "no_mid_block_centered", "class_attn_groups"};

// Every model, every case (int and fractional timesteps, scalar and per row,
// batches 1-3, labels): diffusers' float32 output to 1e-4 of its largest value.
TEST(UNet2D, EqualsDiffusersOnEveryFixture) {
  for (const char* model : kModels) {
    const detail::UNet2DNetwork net = network_of(model);
    const SafetensorsFile cases = SafetensorsFile::open(kFixtures + model + "/cases.safetensors");
    for (int k = 0; k < kCases; ++k) {
      const Case c = case_of(cases, k);
      EXPECT_TRUE(test::close_relative_to_max(forward(net, c), c.output, 1e-4)) << model << " case " << k;
      // Closer still to the float64 model: what is left is float32 rounding.
      const Case exact = case_of(cases, k, "output_float64");
      EXPECT_TRUE(test::close_relative_to_max(forward(net, c), exact.output, 2e-5)) << model << " case " << k;
    }
  }
}

TEST(UNet2D, CountsTheParametersDiffusersHas) {
  std::ifstream file(kFixtures + "manifest.json");
  const nlohmann::json manifest = nlohmann::json::parse(file);
  int counted = 0;
  for (const auto& m : manifest.at("models")) {
    if (!m.contains("parameters") || !m.at("parameters").is_number_integer()) continue;
    ++counted;
    EXPECT_EQ(network_of(m.at("folder").get<std::string>()).parameters, m.at("parameters").get<std::int64_t>())
        << m.at("folder");
  }
  EXPECT_EQ(counted, 6);
}

// diffusers < 0.14's attention names (query, key, value, proj_attn) and a
// 0.0.4 config with only the keys it had: basic's outputs.
TEST(UNet2D, ReadsLegacyAttentionNamesAndOldConfigs) {
  const detail::UNet2DNetwork net = network_of("legacy_attention_names");
  const SafetensorsFile cases = SafetensorsFile::open(kFixtures + "basic/cases.safetensors");
  for (int k = 0; k < kCases; ++k) {
    const Case c = case_of(cases, k);
    EXPECT_TRUE(test::close_relative_to_max(forward(net, c), c.output, 1e-4)) << "case " << k;
  }
}

// The fp16 and bf16 variant files, widened to float32, give what diffusers
// computes from them in float32, and not the float32 weights' output.
TEST(UNet2D, HalfVariantsWidenExactly) {
  const SafetensorsFile cases = SafetensorsFile::open(kFixtures + "basic/cases.safetensors");
  for (const char* variant : {"fp16", "bf16"}) {
    const detail::UNet2DNetwork net = network_of("basic", variant);
    for (int k = 0; k < kCases; ++k) {
      const Case c = case_of(cases, k, std::string(variant) + ".output");
      const Case full = case_of(cases, k);
      const std::vector<float> out = forward(net, c);
      EXPECT_TRUE(test::close_relative_to_max(out, c.output, 1e-4)) << variant << " case " << k;
      EXPECT_FALSE(test::close_relative_to_max(out, full.output, 1e-4)) << variant << " case " << k;
    }
  }
}

// A sample's bits do not depend on its batch, the rows beside it or the
// thread count.
TEST(UNet2D, RowsAreBitwiseIndependentOfTheBatchAndThreads) {
  const detail::UNet2DNetwork net = network_of("class_attn_groups");
  const SafetensorsFile cases = SafetensorsFile::open(kFixtures + "class_attn_groups/cases.safetensors");
  const Case whole = case_of(cases, 4);
  const std::vector<float> all = forward(net, whole, 2);
  EXPECT_TRUE(test::bit_identical(forward(net, whole, 1), all));
  const std::int64_t rows = whole.shape[0];
  const std::size_t in_row = whole.sample.size() / rows, out_row = all.size() / rows;
  for (std::int64_t r = 0; r < rows; ++r) {
    Case one = whole;
    one.shape[0] = 1;
    one.sample.assign(whole.sample.begin() + r * in_row, whole.sample.begin() + (r + 1) * in_row);
    one.times = {whole.times[r]};
    one.labels = {whole.labels[r]};
    EXPECT_TRUE(test::bit_identical(forward(net, one, 2),
                                    std::vector<float>(all.begin() + r * out_row, all.begin() + (r + 1) * out_row)))
        << "row " << r;
  }
}

// The predictor: a pipeline folder's unet and scheduler, the card, and the
// same outputs through predict() at integer steps.
TEST(UNet2D, PipelineFolderGivesTheModelAndItsScheduler) {
  const std::unique_ptr<NetworkPredictor> model = load_model(kFixtures + "pipeline");
  const ModelCard& card = model->model_card();
  EXPECT_EQ(card.architecture, "UNet2DModel");
  EXPECT_EQ(card.scheduler.class_name, "DDPMScheduler");
  EXPECT_EQ(card.sampler.name, "ddpm");
  EXPECT_EQ(card.sampler.num_inference_steps, 1000);
  EXPECT_EQ(card.sample_shape, (std::vector<std::int64_t>{3, 16, 16}));
  EXPECT_EQ(card.num_classes, 0);
  EXPECT_FALSE(model->unconditional_label().has_value());

  const SafetensorsFile cases = SafetensorsFile::open(kFixtures + "ddpm_cifar_like/cases.safetensors");
  const Case c = case_of(cases, 5);  // steps 500 and 250
  const Shape shape{c.shape[0], c.shape[1] * c.shape[2] * c.shape[3]};
  const Schedule schedule = Schedule::from_spec(card.scheduler.schedule);
  model->prepare(schedule, Memory::host, shape, nullptr);
  std::vector<float> out = test::poisoned(c.output.size());
  const std::vector<std::int32_t> steps = {500, 250};
  PredictorCall call;
  call.x_t = c.sample.data();
  call.model_output = out.data();
  call.shape = shape;
  call.steps = steps.data();
  call.schedule = &schedule;
  model->predict(call);
  EXPECT_TRUE(test::close_relative_to_max(out, c.output, 1e-4));
}

TEST(UNet2D, PredictorRefusesShapesAndLabelsTheModelCannotTake) {
  UNet2DPredictor model(kFixtures + "class_scale_shift");  // 1 x 8 x 12, 5 class embeddings
  const Schedule schedule = Schedule::from_spec(model.model_card().scheduler.schedule);
  EXPECT_EQ(model.unconditional_label(), 4);
  EXPECT_NO_THROW(model.prepare(schedule, Memory::host, {2, 96}, nullptr));
  EXPECT_NE(test::message_of([&] { model.prepare(schedule, Memory::host, {2, 95}, nullptr); }).find("8 x 12 = 96"),
            std::string::npos);
  EXPECT_NE(test::message_of([&] { model.set_sample_size(5, 12); }).find("multiples of 2"), std::string::npos);
  EXPECT_NE(test::message_of([&] { model.set_class_label(5); }).find("outside 0..4"), std::string::npos);
  EXPECT_NE(test::message_of([&] { model.set_class_label(-1); }).find("outside 0..4"), std::string::npos);
  model.set_sample_size(16, 8);
  EXPECT_EQ(model.model_card().sample_shape, (std::vector<std::int64_t>{1, 16, 8}));
}

struct Refusal {
  const char* folder;
  const char* needle;
};

// Every hostile folder: one line naming the field and value or the tensor.
TEST(UNet2D, RefusesWhatItDoesNotRunByName) {
  const Refusal refusals[] = {
      {"time_embedding_fourier", "config.json \"time_embedding_type\" is \"fourier\""},
      {"time_embedding_learned", "config.json \"time_embedding_type\" is \"learned\""},
      {"class_embed_timestep", "config.json \"class_embed_type\" is \"timestep\""},
      {"class_embed_identity", "config.json \"class_embed_type\" is \"identity\""},
      {"downsample_resnet", "config.json \"downsample_type\" is \"resnet\""},
      {"upsample_resnet", "config.json \"upsample_type\" is \"resnet\""},
      {"act_fn_gelu", "config.json \"act_fn\" is \"gelu\""},
      {"mid_block_cross_attn", "config.json \"mid_block_type\" is \"UNetMidBlock2DCrossAttn\""},
      {"down_block_unknown", "\"FancyDownBlock2D\""},
      {"up_block_unsupported", "\"ResnetUpsampleBlock2D\""},
      {"missing_tensor", "missing tensor 'up_blocks.0.attentions.0.to_v.bias'"},
      {"extra_tensor", "tensor 'time_embedding.cond_proj.weight' [16, 4] has no place"},
      {"misshapen_tensor", "tensor 'time_embedding.linear_1.weight' has shape [4, 16]; the config implies [16, 4]"},
      {"nan_weight", "tensor 'mid_block.resnets.0.conv1.weight' has a non-finite value"},
  };
  EXPECT_NO_THROW(UNet2DPredictor(kFixtures + "hostile/base"));
  for (const Refusal& r : refusals) {
    const std::string message = test::message_of([&] { UNet2DPredictor(kFixtures + "hostile/" + r.folder); });
    EXPECT_NE(message.find(r.needle), std::string::npos) << r.folder << ": " << message;
    EXPECT_EQ(message.find('\n'), std::string::npos) << message;
    EXPECT_NE(message.find(r.folder), std::string::npos) << "names the file: " << message;
  }
}

TEST(UNet2D, RefusesFoldersWithoutTheFilesItNeeds) {
  const test::ScratchDir dir;
  EXPECT_NE(test::message_of([&] { load_model(dir.path().string()); }).find("no config.json"), std::string::npos);
  EXPECT_NE(test::message_of([&] { load_model(kFixtures + "basic", {.variant = "fp8"}); })
                .find("no diffusion_pytorch_model.fp8.safetensors for --variant fp8"),
            std::string::npos);
  EXPECT_NE(test::message_of([&] { load_model(kFixtures + "hostile/down_block_unknown"); }).find("config.json"),
            std::string::npos);
}

// The config reader: diffusers' defaults for absent keys, and refusals of
// unknown keys and impossible values.
TEST(UNet2D, ConfigDefaultsAndRefusals) {
  const UNet2DConfig defaults = UNet2DConfig::from_json("{}");
  EXPECT_EQ(defaults.block_out_channels, (std::vector<int>{224, 448, 672, 896}));
  EXPECT_EQ(defaults.layers_per_block, 2);
  EXPECT_EQ(defaults.attention_head_dim, 8);
  EXPECT_EQ(defaults.norm_num_groups, 32);
  EXPECT_EQ(defaults.time_embed_dim(), 896);
  EXPECT_EQ(defaults.sample_height, 0);
  auto refusal = [](const std::string& json) { return test::message_of([&] { UNet2DConfig::from_json(json); }); };
  EXPECT_NE(refusal(R"({"cross_attention_dim": 768})").find("unknown field \"cross_attention_dim\""),
            std::string::npos);
  EXPECT_NE(refusal(R"({"_class_name": "UNet2DConditionModel"})").find("\"_class_name\" is \"UNet2DConditionModel\""),
            std::string::npos);
  EXPECT_NE(refusal(R"({"sample_size": [8]})").find("\"sample_size\""), std::string::npos);
  EXPECT_NE(refusal(R"({"norm_eps": 0})").find("\"norm_eps\""), std::string::npos);
  EXPECT_NE(refusal(R"({"block_out_channels": [8, 16]})").find("must be as many"), std::string::npos);
  EXPECT_NE(refusal(R"({"resnet_time_scale_shift": "spatial"})").find("\"spatial\""), std::string::npos);
  EXPECT_NE(refusal(R"({"downsample_padding": 2})").find("\"downsample_padding\" is 2"), std::string::npos);
  EXPECT_NE(refusal("[1]").find("not a JSON object"), std::string::npos);
  // Inference-neutral fields are accepted.
  EXPECT_NO_THROW(UNet2DConfig::from_json(R"({"dropout": 0.1, "num_train_timesteps": 1000, "_diffusers_version": "9"})"));
}

// The trained digits model sampled by ddpm's DDIM, DPM-Solver++ and Euler
// from diffusers' x_T ends where diffusers' pipeline loop ends, with and
// without guidance.
TEST(UNet2D, DigitsLoopsEqualDiffusers) {
  const SafetensorsFile loops =
      SafetensorsFile::open(std::string(DDPM_TEST_DATA_DIR) + "/diffusers/digits_unet_loops.safetensors");
  const nlohmann::json meta =
      detail::parse_json(loops.metadata().at("ddpm_fixture"), "fixture", {.python_nonfinite = true});
  UNet2DPredictor model(test::source_file("models/digits-unet"), {.threads = 2});
  std::vector<std::int32_t> labels;
  for (float l : loops.at("labels").to_floats()) labels.push_back(static_cast<std::int32_t>(l));
  const std::vector<float> z = loops.at("z").to_floats();
  int compared = 0;
  for (const auto& [name, loop] : meta.at("loops").items()) {
    nlohmann::json config = loop.at("config");
    config["_class_name"] = loop.at("scheduler");
    const SchedulerConfig s = SchedulerConfig::from_json(config.dump());
    SamplerOptions options = s.options;
    options.sampler = *s.sampler;
    options.num_inference_steps = loop.at("steps").get<int>();
    options.backend = Backend::cpu;
    options.threads = 2;
    Sampler sampler(Schedule::from_spec(s.schedule), options);
    std::vector<float> x = z;
    for (float& v : x) v *= static_cast<float>(sampler.initial_noise_scale());
    const Shape shape{4, 256};
    sampler.sample({.x = x,
                    .shape = shape,
                    .noise = {1, 0},
                    .initial_noise_given = true,
                    .class_labels = labels,
                    .guidance_scale = loop.at("guidance_scale").get<double>()},
                   model);
    std::vector<double> expected;
    for (float v : loops.at(name + ".final").to_floats()) expected.push_back(v);
    EXPECT_TRUE(test::close_relative_to_max(x, expected, 2e-5)) << name;
    ++compared;
  }
  EXPECT_EQ(compared, 6);
}

}  // namespace
}  // namespace ddpm
