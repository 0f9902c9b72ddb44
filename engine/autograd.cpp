#include "engine/autograd.h"

#include <stdexcept>
#include <unordered_map>
#include <unordered_set>

#include "engine/ops/elementwise.h"

namespace ll {

namespace {
thread_local bool g_grad_enabled = true;
}  // namespace

bool grad_enabled() { return g_grad_enabled; }

NoGradGuard::NoGradGuard() : previous_(g_grad_enabled) { g_grad_enabled = false; }
NoGradGuard::~NoGradGuard() { g_grad_enabled = previous_; }

bool needs_grad(std::initializer_list<const Tensor*> inputs) {
  if (!g_grad_enabled) return false;
  for (const Tensor* t : inputs) {
    if (t && t->requires_grad()) return true;
  }
  return false;
}

bool needs_grad(const std::vector<Tensor>& inputs) {
  if (!g_grad_enabled) return false;
  for (const Tensor& t : inputs) {
    if (t.requires_grad()) return true;
  }
  return false;
}

Tensor record(Tensor output, const char* op, std::vector<Tensor> inputs, BackwardFn backward) {
  if (!needs_grad(inputs)) return output;
  auto node = std::make_shared<Node>();
  node->op = op;
  node->inputs = std::move(inputs);
  node->backward = std::move(backward);
  output.impl()->grad_fn = std::move(node);
  output.impl()->requires_grad = true;
  return output;
}

namespace {

// Nodes reachable from `root`, each after every node that uses its output (reverse topological
// order of the forward pass). Iterative depth-first search: graphs of deep models would overflow
// a recursive one.
std::vector<Node*> topological_order(Node* root) {
  std::vector<Node*> post;  // post-order: a node after all nodes it depends on
  std::unordered_set<Node*> seen;
  std::vector<std::pair<Node*, size_t>> stack{{root, 0}};
  seen.insert(root);
  while (!stack.empty()) {
    auto& [node, next] = stack.back();
    if (next < node->inputs.size()) {
      const Tensor& in = node->inputs[next++];
      Node* child = in.defined() ? in.grad_fn().get() : nullptr;
      if (child && seen.insert(child).second) stack.emplace_back(child, 0);
    } else {
      post.push_back(node);
      stack.pop_back();
    }
  }
  return {post.rbegin(), post.rend()};
}

// Sum of gradients arriving at one place. The first gradient is kept as is; later ones are added
// out of place, because a backward may return the same tensor to several inputs (add does).
void accumulate(Tensor& slot, const Tensor& g) { slot = slot.defined() ? add(slot, g) : g; }

}  // namespace

void run_backward(const Tensor& root, const Tensor& grad_root, bool retain_graph) {
  if (!root.requires_grad()) {
    throw std::invalid_argument("backward(): the tensor " + root.str() +
                                " does not require grad (no input of its graph has requires_grad, "
                                "or it was computed under NoGradGuard)");
  }
  Tensor g0 = grad_root;
  if (!g0.defined()) {
    if (root.numel() != 1) {
      throw std::invalid_argument("backward(): the tensor " + root.str() +
                                  " is not a scalar; pass the gradient of the output explicitly");
    }
    g0 = Tensor::ones(root.shape(), root.device());
  }
  check_arg(g0.shape() == root.shape(), "backward",
            "gradient shape " + shape_str(g0.shape()) + " does not match the tensor's " + shape_str(root.shape()));

  NoGradGuard no_grad;  // gradients are plain values: no graph of the backward pass
  auto add_to_leaf = [](const Tensor& leaf, const Tensor& g) {
    TensorImpl* impl = leaf.impl();
    if (impl->grad) {
      impl->grad = add(Tensor(impl->grad), g).impl_ptr();
    } else if (g.impl_ptr().use_count() == 1 && g.impl()->storage.use_count() == 1) {
      // Nothing else holds this gradient (the backward made it and its node is freed): adopt it.
      impl->grad = g.impl_ptr();
    } else {
      // Shared (a backward returned one tensor to several inputs, a retained graph keeps it, or
      // the caller passed it): a fresh copy, never an alias, since the optimizer and later
      // accumulation write into it.
      impl->grad = g.clone().impl_ptr();
    }
  };

  if (!root.grad_fn()) {  // a leaf
    add_to_leaf(root, g0);
    return;
  }

  std::unordered_map<Node*, Tensor> pending;
  pending[root.grad_fn().get()] = g0;
  for (Node* node : topological_order(root.grad_fn().get())) {
    auto it = pending.find(node);
    if (it == pending.end()) continue;  // no gradient flows through this node
    const Tensor g = std::move(it->second);
    pending.erase(it);
    if (!node->backward) {
      throw std::runtime_error("backward(): the graph through '" + node->op +
                               "' was already freed by an earlier backward(); pass retain_graph = "
                               "true to the first backward() to go through it twice");
    }
    std::vector<Tensor> grads = node->backward(g);
    if (grads.size() != node->inputs.size()) {
      throw std::logic_error("backward of '" + node->op + "' returned " + std::to_string(grads.size()) +
                             " gradients for " + std::to_string(node->inputs.size()) + " inputs");
    }
    if (!retain_graph) node->backward = nullptr;  // frees the saved tensors
    for (size_t i = 0; i < grads.size(); ++i) {
      const Tensor& in = node->inputs[i];
      if (!grads[i].defined() || !in.requires_grad()) continue;
      if (grads[i].shape() != in.shape()) {
        throw std::logic_error("backward of '" + node->op + "': gradient " + shape_str(grads[i].shape()) +
                               " for input " + std::to_string(i) + " of shape " + shape_str(in.shape()));
      }
      if (in.grad_fn()) {
        accumulate(pending[in.grad_fn().get()], grads[i]);
      } else {
        add_to_leaf(in, grads[i]);
      }
    }
  }
}

}  // namespace ll
