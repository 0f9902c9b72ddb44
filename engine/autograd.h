// autograd.h: reverse-mode automatic differentiation over a dynamically recorded graph.
//
// Every differentiable op (engine/ops/) computes its output and then calls record(): when grad mode
// is on and some input requires a gradient, the output gets a Node holding the op's inputs (the
// graph's edges) and its backward, a closure written next to the forward that maps dL/doutput to
// dL/dinput for each input. Tensor::backward() then visits the nodes from the loss towards the
// leaves in reverse topological order, so each node runs once with the sum of the gradients of all
// its uses, and adds what reaches a leaf to that leaf's grad().
//
// What GAN training needs works as in PyTorch:
//   - detach(): a tensor with the same values and no history; gradients stop there.
//   - several backward passes per step, each over its own graph; leaves accumulate (+=) until
//     zero_grad().
//   - NoGradGuard: nothing is recorded inside its scope (evaluation, sampling, optimizer steps).
//   - a graph's saved values are freed by backward() unless retain_graph is set; a second backward
//     through a freed graph is an error that says so.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "engine/tensor.h"

namespace ll {

// Maps the gradient of the output to one gradient per input (an undefined Tensor where an input
// needs none).
using BackwardFn = std::function<std::vector<Tensor>(const Tensor& grad_output)>;

struct Node {
  std::string op;              // e.g. "conv2d": named in error messages
  std::vector<Tensor> inputs;  // the edges of the graph
  BackwardFn backward;         // empty once freed
};

// Whether ops record the graph (thread-local; on by default).
bool grad_enabled();

class NoGradGuard {
 public:
  NoGradGuard();
  ~NoGradGuard();
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool previous_;
};

// True when `output` of an op over `inputs` must be recorded.
bool needs_grad(std::initializer_list<const Tensor*> inputs);
bool needs_grad(const std::vector<Tensor>& inputs);

// Attaches the node (op, inputs, backward) to `output` when needs_grad(inputs); returns output.
// A backward must not capture `output` itself (that would make a reference cycle); capture
// output.detach() to reuse its values.
Tensor record(Tensor output, const char* op, std::vector<Tensor> inputs, BackwardFn backward);

// The engine behind Tensor::backward.
void run_backward(const Tensor& root, const Tensor& grad_root, bool retain_graph);

}  // namespace ll
