// tiny_model.h: the model whose optimizer state fuzz_adam_state loads, and make_seeds saves: an MLP
// VAE on 1x2x2 images, hidden 3, latent 2 (10 parameter tensors, 47 values), so that one fuzz
// input is a whole, realistic optimizer.safetensors of a few hundred bytes.
#pragma once
#include "models/vae.h"

namespace ll::fuzz {

inline models::VaeConfig tiny_vae_config() {
  models::VaeConfig c;
  c.kind = models::AeKind::VAE;
  c.arch = models::Arch::MLP;
  c.channels = 1;
  c.height = c.width = 2;
  c.hidden = 3;
  c.latent_dim = 2;
  return c;
}

}  // namespace ll::fuzz
