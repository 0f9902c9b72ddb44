// fuzz_adam_state.cpp: the optimizer state of a run (DIR/optimizer.safetensors), read as
// `latentlab train --resume` reads it: ll::load_tensors on the file (engine/checkpoint.h; documented
// errors ll::io::FormatError and, for I/O, std::runtime_error), then optim::Adam::load_state_dict
// on a small model's parameters (fuzz/tiny_model.h; documented error std::invalid_argument: a
// missing entry, a wrong shape, a step count that is not one).
//
// A state that loads must be usable: the step count is a count (0 <= steps < 2^48), the moments
// are the file's values, and one training step runs on them.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

#include "engine/checkpoint.h"
#include "engine/io/safetensors.h"
#include "engine/optim/optimizer.h"
#include "fuzz/common.h"
#include "fuzz/tiny_model.h"

namespace {

using ll::fuzz::check;
using ll::fuzz::same_bits;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ll;
  const std::string path = fuzz::write_scratch_file("optimizer.safetensors", data, size);
  std::map<std::string, Tensor> state;
  try {
    state = load_tensors(path);
  } catch (const std::runtime_error&) {  // io::FormatError, or an I/O error
    return 0;
  }

  Generator init(0);
  models::Autoencoder model(fuzz::tiny_vae_config(), init);
  optim::Adam adam(model.parameters(), {.lr = 1e-3});
  try {
    adam.load_state_dict(state);
  } catch (const std::invalid_argument&) {
    return 0;
  }
  check(adam.steps() >= 0 && adam.steps() < (int64_t{1} << 48));
  const std::map<std::string, Tensor> loaded = adam.state_dict();
  for (const auto& [name, t] : loaded) {
    if (name == "step" || name == "step_exact") continue;
    check(same_bits(t.to_vector(), state.at(name).to_vector()));
  }

  const int64_t steps = adam.steps();
  Generator noise(1);
  models::train_step(model, adam, Tensor::full({1, 1, 2, 2}, 0.5f), noise);
  check(adam.steps() == steps + 1);
  return 0;
}
