// test_device.cpp: the device layer. Tests that need a GPU skip, saying why, where there is none.
#include <gtest/gtest.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "engine/device.h"
#include "engine/ops/elementwise.h"
#include "engine/tensor.h"

namespace ll {
namespace {

TEST(Device, ParsesTheDeviceFlag) {
  EXPECT_EQ(parse_device("cpu"), Device::CPU);
  const Device a = parse_device("auto");
  EXPECT_EQ(a, cuda_available() && cuda_ops_built() ? Device::CUDA : Device::CPU);
  EXPECT_THROW(parse_device("gpu"), std::invalid_argument);
  if (!cuda_available()) {
    try {
      parse_device("cuda");
      FAIL() << "--device cuda without a GPU must be refused";
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find("no usable GPU"), std::string::npos) << e.what();
    }
  }
}

TEST(Device, ExplainsWhyThereIsNoGpu) {
  std::string why;
  if (cuda_available(&why)) GTEST_SKIP() << "a GPU is present: " << cuda_description();
  EXPECT_FALSE(why.empty());
  EXPECT_NE(cuda_description().find("no GPU"), std::string::npos);
}

TEST(DeviceCuda, RoundTripsTensorsThroughGpuMemory) {
  std::string why;
  if (!cuda_available(&why)) GTEST_SKIP() << "no GPU: " << why;
  std::vector<float> v{1.5f, -2.0f, 3.25f, 0.0f, 7.0f, -0.125f};
  Tensor host = Tensor::from_vector(v, {2, 3});
  Tensor gpu = host.to(Device::CUDA);
  EXPECT_EQ(gpu.device(), Device::CUDA);
  Tensor gpu2 = gpu.clone();  // device-to-device
  gpu2.slice(1, 2).fill_(4.0f);
  EXPECT_EQ(gpu.to_vector(), v);
  EXPECT_EQ(gpu2.to_vector(), (std::vector<float>{1.5f, -2.0f, 3.25f, 4.0f, 4.0f, 4.0f}));
  EXPECT_EQ(gpu2.at({1, 2}), 4.0f);
  Tensor z = Tensor::zeros({1000}, Device::CUDA);
  for (float x : z.to_vector()) ASSERT_EQ(x, 0.0f);
}

TEST(DeviceCuda, MixedDevicesAreRefusedByName) {
  std::string why;
  if (!cuda_available(&why)) GTEST_SKIP() << "no GPU: " << why;
  Tensor a = Tensor::ones({3}, Device::CUDA);
  Tensor b = Tensor::ones({3}, Device::CPU);
  try {
    (void)add(a, b);
    FAIL() << "add of a CUDA and a CPU tensor must be refused";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("different devices"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace ll
