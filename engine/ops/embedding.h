// embedding.h: table lookup (PyTorch's F.embedding).
#pragma once
#include <cstdint>
#include <vector>

#include "engine/tensor.h"

namespace ll {

// table (num, dim), indices in [0, num) -> (indices.size(), dim)
Tensor embedding(const Tensor& table, const std::vector<int32_t>& indices);

}  // namespace ll
