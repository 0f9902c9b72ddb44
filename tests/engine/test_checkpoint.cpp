// test_checkpoint.cpp: modules and optimizer state through safetensors files.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <stdexcept>
#include <string>

#include "engine/checkpoint.h"
#include "engine/io/safetensors.h"
#include "engine/nn/layers.h"
#include "engine/ops/ops.h"
#include "engine/optim/optimizer.h"

namespace ll {
namespace {

using namespace nn;
namespace fs = std::filesystem;

std::string temp_path(const std::string& name) {
  return (fs::temp_directory_path() / ("latentlab_test_" + std::to_string(::getpid()) + "_" + name)).string();
}

std::shared_ptr<Sequential> make_net(uint64_t seed) {
  Generator g(seed);
  return std::make_shared<Sequential>(std::initializer_list<std::shared_ptr<Layer>>{
      std::make_shared<Conv2d>(1, 3, Pair{3, 3}, g), BatchNorm2d(3), std::make_shared<ReLU>(), std::make_shared<Flatten>(),
      std::make_shared<Linear>(3 * 4 * 4, 2, g)});
}

TEST(Checkpoint, ModuleRoundTripWithMetadata) {
  auto a = make_net(1);
  a->forward(Tensor::ones({2, 1, 6, 6}));  // moves the BatchNorm running statistics
  const std::string path = temp_path("module.safetensors");
  save_module(path, *a, {{"model", "test-net"}, {"latent_dim", "2"}});
  auto b = make_net(2);
  const Metadata meta = load_module(path, *b);
  EXPECT_EQ(meta.at("model"), "test-net");
  EXPECT_EQ(meta.at("latent_dim"), "2");
  for (auto& [name, t] : a->state_dict()) {
    EXPECT_EQ(t.to_vector(), b->state_dict().at(name).to_vector()) << name;
  }
  // The counter is stored as int64, as PyTorch keeps it.
  const io::Checkpoint raw = io::load_safetensors(path);
  EXPECT_EQ(raw.tensors.at("1.num_batches_tracked").dtype, io::DType::I64);
  EXPECT_EQ(raw.tensors.at("0.weight").dtype, io::DType::F32);
  EXPECT_EQ(raw.tensors.at("4.weight").shape, (std::vector<int64_t>{2, 48}));
  fs::remove(path);
}

TEST(Checkpoint, WrongModelIsRefusedByName) {
  const std::string path = temp_path("wrong.safetensors");
  Generator g(0);
  Sequential small{std::make_shared<Linear>(3, 2, g)};
  save_module(path, small);
  auto net = make_net(1);
  try {
    load_module(path, *net);
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
  fs::remove(path);
}

TEST(Checkpoint, OptimizerStateRoundTrip) {
  auto net = make_net(3);
  optim::Adam adam(net->parameters(), {.lr = 0.01f});
  for (int i = 0; i < 2; ++i) {
    adam.zero_grad();
    sum(net->forward(Tensor::ones({2, 1, 6, 6}))).backward();
    adam.step();
  }
  const std::string path = temp_path("optim.safetensors");
  save_tensors(path, adam.state_dict());
  optim::Adam fresh(net->parameters(), {.lr = 0.01f});
  fresh.load_state_dict(load_tensors(path));
  EXPECT_EQ(fresh.steps(), 2);
  for (auto& [k, v] : adam.state_dict()) EXPECT_EQ(v.to_vector(), fresh.state_dict().at(k).to_vector()) << k;
  fs::remove(path);
}

// Adam's step count survives a checkpoint exactly past 2^24 (where a float would round it), and a
// checkpoint with PyTorch's float "step" alone still loads.
TEST(Checkpoint, AdamStepCountIsExactBeyondFloat) {
  auto net = make_net(3);
  optim::Adam adam(net->parameters(), {.lr = 0.01f});
  std::map<std::string, Tensor> state = adam.state_dict();
  state["step_exact"] = Tensor::from_vector({1.0f, 1.0f}, {2});  // 2^24 + 1
  adam.load_state_dict(state);
  EXPECT_EQ(adam.steps(), (int64_t{1} << 24) + 1);
  const std::string path = temp_path("optim_big_step.safetensors");
  save_tensors(path, adam.state_dict());
  optim::Adam fresh(net->parameters(), {.lr = 0.01f});
  fresh.load_state_dict(load_tensors(path));
  EXPECT_EQ(fresh.steps(), (int64_t{1} << 24) + 1);
  std::map<std::string, Tensor> pytorch_style = adam.state_dict();
  pytorch_style.erase("step_exact");
  pytorch_style["step"] = Tensor::scalar(7.0f);
  fresh.load_state_dict(pytorch_style);
  EXPECT_EQ(fresh.steps(), 7);
  state["step_exact"] = Tensor::from_vector({0.5f, 0.0f}, {2});
  EXPECT_THROW(fresh.load_state_dict(state), std::invalid_argument);
  // PyTorch's float "step" is a count too: NaN, negative, fractional or huge values are refused
  // (they loaded as garbage counts; fuzz/fuzz_adam_state.cpp checks 0 <= steps() < 2^48).
  // A refused state changes nothing.
  for (float bad : {std::nanf(""), -1.0f, 2.5f, 1e30f, std::numeric_limits<float>::infinity()}) {
    pytorch_style["step"] = Tensor::scalar(bad);
    EXPECT_THROW(fresh.load_state_dict(pytorch_style), std::invalid_argument) << bad;
    EXPECT_EQ(fresh.steps(), 7) << bad;
  }
  fs::remove(path);
}

TEST(Checkpoint, CorruptFileIsAClearError) {
  const std::string path = temp_path("corrupt.safetensors");
  {
    std::ofstream f(path, std::ios::binary);
    f << "not a checkpoint";
  }
  auto net = make_net(1);
  EXPECT_THROW(load_module(path, *net), io::FormatError);
  EXPECT_THROW(load_module(temp_path("does_not_exist.safetensors"), *net), std::runtime_error);
  fs::remove(path);
}

// A loader compares the model that a file's metadata describes with the values the file holds
// before it builds that model: metadata edited to describe a huge model is refused without the
// allocation.
TEST(Checkpoint, MetadataDescribingMoreParametersThanTheFileHoldsIsRefused) {
  const std::string path = temp_path("count.safetensors");
  std::map<std::string, Tensor> tensors{{"a", Tensor::zeros({3, 4})}, {"b", Tensor::zeros({5})}};
  EXPECT_NO_THROW(check_holds_parameters(path, tensors, 17));  // exactly the file's values
  EXPECT_NO_THROW(check_holds_parameters(path, tensors, 12));  // buffers add values beyond the parameters
  try {
    check_holds_parameters(path, tensors, int64_t{1} << 40);
    FAIL() << "a configuration of 2^40 parameters was accepted for a file of 17 values";
  } catch (const io::FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("1099511627776 parameters, but the file holds 17 values"), std::string::npos)
        << e.what();
  }
}

TEST(Checkpoint, MetadataCountsAreDigitsWithinBounds) {
  const Metadata m{{"epoch", "12"}, {"max", "18446744073709551615"}, {"over", "18446744073709551616"},
                   {"neg", "-1"},   {"space", " 3"},                 {"empty", ""},
                   {"hex", "0x10"}, {"float", "1.5"}};
  EXPECT_EQ(metadata_count(m, "epoch", "f"), 12u);
  EXPECT_EQ(metadata_count(m, "max", "f"), UINT64_MAX);
  EXPECT_THROW(metadata_count(m, "epoch", "f", 11), io::FormatError);
  for (const char* bad : {"over", "neg", "space", "empty", "hex", "float", "missing"}) {
    EXPECT_THROW(metadata_count(m, bad, "f"), io::FormatError) << bad;
  }
  try {
    metadata_count(m, "neg", "run/model.safetensors");
    FAIL();
  } catch (const io::FormatError& e) {
    EXPECT_STREQ(e.what(), "run/model.safetensors: the metadata's \"neg\" is \"-1\", not a count in 0..18446744073709551615 (a damaged or edited file)");
  }
}

}  // namespace
}  // namespace ll
