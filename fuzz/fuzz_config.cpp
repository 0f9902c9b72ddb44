// fuzz_config.cpp: the model configurations that checkpoints carry as JSON in their metadata
// ("config"), which a loader turns into a model before it reads the tensors:
//   models::VaeConfig::from_json         model.safetensors of `train ae|vae` (apps/run_dir.h: load_run)
//   models::GanConfig::from_json         generator.safetensors of `train dcgan|cgan|gan128`
//   models::ClassifierConfig::from_json  classifier.safetensors of `train classifier` (the FID's)
// Each parser gets the same bytes; their documented error is std::invalid_argument.
//
// A configuration that parses must be safe to build, as the loaders build it:
//   - its JSON round-trips (from_json(to_json()) writes the same JSON);
//   - its parameter count is at most kMaxParameters, and, when small enough to build quickly here
//     (at most 2^16), the model built from it has exactly that many parameters.
#include <cstdint>
#include <cstdlib>
#include <stdexcept>
#include <string>

#include "engine/rng.h"
#include "fuzz/common.h"
#include "models/classifier.h"
#include "models/gan.h"
#include "models/vae.h"

namespace {

constexpr int64_t kBuildAtMost = int64_t{1} << 16;

using ll::fuzz::check;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ll::models;
  const std::string text(reinterpret_cast<const char*>(data), size);

  try {
    const VaeConfig c = VaeConfig::from_json(text);
    check(VaeConfig::from_json(c.to_json()).to_json() == c.to_json());
    const int64_t n = c.num_parameters();
    check(n >= 1 && n <= VaeConfig::kMaxParameters);
    if (n <= kBuildAtMost) {
      ll::Generator init(0);
      check(Autoencoder(c, init).num_parameters() == n);
    }
  } catch (const std::invalid_argument&) {
  }

  try {
    const GanConfig c = GanConfig::from_json(text);
    check(GanConfig::from_json(c.to_json()).to_json() == c.to_json());
    const int64_t g = c.generator_parameters(), d = c.discriminator_parameters();
    check(g >= 1 && g <= GanConfig::kMaxParameters && d >= 1 && d <= GanConfig::kMaxParameters);
    if (g + d <= kBuildAtMost) {
      ll::Generator init(0);
      check(GanGenerator(c, init).num_parameters() == g);
      check(GanDiscriminator(c, init).num_parameters() == d);
    }
  } catch (const std::invalid_argument&) {
  }

  try {
    const ClassifierConfig c = ClassifierConfig::from_json(text);
    check(ClassifierConfig::from_json(c.to_json()).to_json() == c.to_json());
    const int64_t n = c.num_parameters();
    check(n >= 1 && n <= ClassifierConfig::kMaxParameters);
    if (n <= kBuildAtMost) {
      ll::Generator init(0);
      check(Classifier(c, init).num_parameters() == n);
    }
  } catch (const std::invalid_argument&) {
  }
  return 0;
}
