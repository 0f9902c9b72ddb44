// gan_trace: records latentlab's DCGAN-28 training trajectory for comparison with PyTorch's
// (models/gan_trace.h says what a trace holds). bench/pytorch/compare_trace.py compares two records;
// bench/pytorch/make_trace_fixture.py makes the trajectory test's fixture with it.
//
//   gan_trace --steps 200 --batch-size 64 --seed 1 --inputs inputs.safetensors --record ours.safetensors
//
// Writes the inputs (initial weights, each step's image indices and noise, made as `latentlab
// train dcgan --seed S` makes them) unless --use-inputs names an existing file, then trains on
// Fashion-MNIST from them on the CPU and writes the record.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>
#include <iostream>

#include "data/dataset.h"
#include "engine/checkpoint.h"
#include "kernels/gemm.h"
#include "models/gan_trace.h"

int main(int argc, char** argv) {
  ll::kernels::cpu::restart_with_better_blas_core(argv);
  CLI::App app{"latentlab's DCGAN-28 training trajectory, step by step"};
  ll::models::GanTraceSpec spec;
  std::string inputs_path, use_inputs, record_path, data = "fashion-mnist";
  app.add_option("--steps", spec.steps)->capture_default_str();
  app.add_option("--batch-size", spec.batch_size)->capture_default_str();
  app.add_option("--seed", spec.seed)->capture_default_str();
  app.add_option("--ngf", spec.config.ngf)->capture_default_str();
  app.add_option("--ndf", spec.config.ndf)->capture_default_str();
  app.add_option("--eval-samples", spec.eval_samples)->capture_default_str();
  app.add_option("--data", data, "an IDX data set of 28x28 grayscale images")->capture_default_str();
  app.add_option("--inputs", inputs_path, "write the inputs here");
  app.add_option("--use-inputs", use_inputs, "read the inputs from this file instead of making them");
  app.add_option("--record", record_path, "write the record here")->required();
  CLI11_PARSE(app, argc, argv);
  try {
    ll::data::Dataset train = ll::data::load_dataset(data, ll::data::Split::Train, 28);
    if (train.channels != 1 || train.height != 28 || train.width != 28) {
      throw std::invalid_argument(data + ": DCGAN-28 traces need 28x28 grayscale images");
    }
    ll::models::TensorMap inputs;
    if (!use_inputs.empty()) {
      inputs = ll::load_tensors(use_inputs);
    } else {
      inputs = ll::models::make_gan_trace_inputs(spec, train.n);
      if (!inputs_path.empty()) {
        ll::save_tensors(inputs_path, inputs, {{"steps", std::to_string(spec.steps)},
                                               {"batch_size", std::to_string(spec.batch_size)},
                                               {"seed", std::to_string(spec.seed)},
                                               {"ngf", std::to_string(spec.config.ngf)},
                                               {"ndf", std::to_string(spec.config.ndf)}});
        std::cerr << "gan_trace: wrote " << inputs_path << "\n";
      }
    }
    const ll::models::TensorMap record = ll::models::run_gan_trace(spec, inputs, train);
    ll::save_tensors(record_path, record, {{"framework", "latentlab"}});
    std::cerr << "gan_trace: wrote " << record_path << " (" << spec.steps << " steps)\n";
  } catch (const std::exception& e) {
    std::cerr << "gan_trace: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
