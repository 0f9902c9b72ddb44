// ops.h: the functional API of latentlab, one include. Each op's backward is written beside its
// forward in engine/ops/<family>.cpp.
#pragma once
#include "engine/autograd.h"
#include "engine/ops/activation.h"
#include "engine/ops/conv.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/embedding.h"
#include "engine/ops/linear.h"
#include "engine/ops/loss.h"
#include "engine/ops/norm.h"
#include "engine/ops/random.h"
#include "engine/tensor.h"
