#include "engine/ops/embedding.h"

#include <memory>

#include "engine/autograd.h"
#include "engine/ops/dispatch.h"
#include "engine/ops/internal.h"
#include "kernels/embedding.h"

namespace ll {

Tensor embedding(const Tensor& table, const std::vector<int32_t>& indices) {
  check_arg(table.dim() == 2, "embedding", "table must be (num, dim), got " + table.str());
  const int64_t num = table.size(0), dim = table.size(1), N = static_cast<int64_t>(indices.size());
  // Checked here, on the host copy, for both devices: the message names the position.
  for (size_t i = 0; i < indices.size(); ++i) {
    check_arg(indices[i] >= 0 && indices[i] < num, "embedding",
              "index " + std::to_string(indices[i]) + " at position " + std::to_string(i) + " is not in [0, " +
                  std::to_string(num) + ")");
  }
  check_same_device("embedding", {&table});
  // The indices where the kernels read them (a device copy for a CUDA table), shared with backward.
  auto idx = std::make_shared<const detail::Indices>(indices, table.device());
  Tensor y = Tensor::empty({N, dim}, table.device());
  LL_KERNEL(y.device(), embedding_forward, table.data(), idx->data(), y.data(), N, num, dim);
  return record(y, "embedding", {table}, [idx, N, num, dim](const Tensor& g) {
    Tensor gt = Tensor::empty({num, dim}, g.device());
    LL_KERNEL(g.device(), embedding_backward, g.data(), idx->data(), gt.data(), N, num, dim);
    return std::vector<Tensor>{gt};
  });
}

}  // namespace ll
