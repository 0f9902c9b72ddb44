#include "engine/ops/embedding.h"

#include "engine/autograd.h"
#include "kernels/embedding.h"

namespace ll {

namespace k = kernels::cpu;

Tensor embedding(const Tensor& table, const std::vector<int32_t>& indices) {
  check_arg(table.dim() == 2, "embedding", "table must be (num, dim), got " + table.str());
  const int64_t num = table.size(0), dim = table.size(1), N = static_cast<int64_t>(indices.size());
  for (size_t i = 0; i < indices.size(); ++i) {
    check_arg(indices[i] >= 0 && indices[i] < num, "embedding",
              "index " + std::to_string(indices[i]) + " at position " + std::to_string(i) + " is not in [0, " +
                  std::to_string(num) + ")");
  }
  check_same_device("embedding", {&table});
  Tensor y = Tensor::empty({N, dim}, table.device());
  k::embedding_forward(table.data(), indices.data(), y.data(), N, num, dim);
  return record(y, "embedding", {table}, [indices, N, num, dim](const Tensor& g) {
    Tensor gt = Tensor::empty({num, dim}, g.device());
    k::embedding_backward(g.data(), indices.data(), gt.data(), N, num, dim);
    return std::vector<Tensor>{gt};
  });
}

}  // namespace ll
