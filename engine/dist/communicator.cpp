// communicator.cpp: the backend-independent part of engine/dist: the fixed-order sum, check_same,
// the single-process communicator, the --dist factory and the environment it reads.
#include "engine/dist/communicator.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <vector>

#include "engine/dist/wait.h"
#ifdef LATENTLAB_HAS_MPI
#include "engine/dist/mpi_communicator.h"
#endif
#ifdef LATENTLAB_HAS_NCCL
#include "engine/dist/nccl_communicator.h"
#endif

namespace ll::dist {

// ---- the fixed order -------------------------------------------------------------------------
namespace {

// Elements per block: the sum is taken a block at a time, so its scratch stays in L1 and `out` may
// alias a part (a block's values are all read before its sum is written).
constexpr int64_t kBlock = 1024;

// dst[0 .. m) = sum(lo, hi) of parts[r][i0 .. i0 + m), in the order of communicator.h. `scratch`
// has a block for each level below this one (the right halves' sums).
void sum_block(const float* const* parts, int lo, int hi, int64_t i0, int64_t m, float* dst, float* scratch) {
  const int count = hi - lo;
  if (count == 1) {
    std::memcpy(dst, parts[lo] + i0, static_cast<size_t>(m) * sizeof(float));
    return;
  }
  if (count == 2) {
    const float* a = parts[lo] + i0;
    const float* b = parts[lo + 1] + i0;
    for (int64_t j = 0; j < m; ++j) dst[j] = a[j] + b[j];
    return;
  }
  const int mid = lo + (count + 1) / 2;
  sum_block(parts, lo, mid, i0, m, dst, scratch);
  sum_block(parts, mid, hi, i0, m, scratch, scratch + kBlock);
  for (int64_t j = 0; j < m; ++j) dst[j] += scratch[j];
}

}  // namespace

void sum_in_fixed_order(const float* const* parts, int count, float* out, int64_t n) {
  if (count < 1) throw std::invalid_argument("sum_in_fixed_order: needs at least one part, got " + std::to_string(count));
  if (n <= 0) return;
  int levels = 0;  // ceil(log2(count)): the depth of the halving
  while ((1 << levels) < count) ++levels;
  std::vector<float> scratch(static_cast<size_t>(levels + 1) * kBlock);
  for (int64_t i0 = 0; i0 < n; i0 += kBlock) {
    const int64_t m = std::min(kBlock, n - i0);
    sum_block(parts, 0, count, i0, m, scratch.data(), scratch.data() + kBlock);
    std::memcpy(out + i0, scratch.data(), static_cast<size_t>(m) * sizeof(float));
  }
}

// ---- check_same ----------------------------------------------------------------------------
namespace {

// `s` quoted whole when short, else the 80 characters around `at` with "..." where it was cut.
std::string excerpt(const std::string& s, size_t at) {
  constexpr size_t kShort = 120, kAround = 40;
  if (s.size() <= kShort) return "\"" + s + "\"";
  const size_t begin = at > kAround ? at - kAround : 0;
  const size_t end = std::min(s.size(), begin + 2 * kAround);
  return std::string(begin > 0 ? "..." : "") + "\"" + s.substr(begin, end - begin) + "\"" + (end < s.size() ? "..." : "");
}

}  // namespace

void Communicator::check_same(const std::string& what, const std::string& text) {
  // The key is compared too: ranks that check different things are out of step.
  const std::string mine = what + '\0' + text;
  auto share = [&](int root) {  // rank `root`'s `mine`, on every rank
    uint64_t length = mine.size();
    broadcast(&length, sizeof length, root);
    std::string theirs(length, '\0');
    if (rank() == root) theirs = mine;
    broadcast(theirs.data(), length, root);
    return theirs;
  };
  const std::string first = share(0);
  const int32_t differs = mine != first ? 1 : 0;
  std::vector<int32_t> all(static_cast<size_t>(size()));
  all_gather(&differs, all.data(), sizeof differs);
  const auto at = std::find(all.begin(), all.end(), 1);
  if (at == all.end()) return;
  const int other_rank = static_cast<int>(at - all.begin());
  const std::string other = share(other_rank);

  auto key = [](const std::string& s) { return s.substr(0, s.find('\0')); };
  auto value = [](const std::string& s) { return s.substr(s.find('\0') + 1); };
  const std::string r = "rank " + std::to_string(other_rank);
  if (key(first) != key(other)) {
    throw std::runtime_error("ranks are out of step: rank 0 checks \"" + key(first) + "\" where " + r + " checks \"" +
                             key(other) + "\"");
  }
  const std::string a = value(first), b = value(other);
  const size_t pos = static_cast<size_t>(std::mismatch(a.begin(), a.begin() + std::min(a.size(), b.size()), b.begin()).first - a.begin());
  throw std::runtime_error("ranks disagree on " + what + ": " + r + " differs from rank 0 at character " + std::to_string(pos) +
                           ": rank 0 has " + excerpt(a, pos) + ", " + r + " has " + excerpt(b, pos));
}

// ---- Local ---------------------------------------------------------------------------------
void Local::all_reduce_sum(float*, int64_t n) {
  if (n < 0) throw std::invalid_argument("all_reduce_sum: negative length " + std::to_string(n));
}

void Local::all_reduce_mean(float*, int64_t n) {
  if (n < 0) throw std::invalid_argument("all_reduce_mean: negative length " + std::to_string(n));
}

void Local::broadcast(void*, size_t, int root) {
  if (root != 0) throw std::invalid_argument("broadcast: root " + std::to_string(root) + " is not a rank of 1 process");
}

void Local::all_gather(const void* mine, void* all, size_t n) {
  if (n > 0 && all != mine) std::memmove(all, mine, n);
}

// ---- the factory and the environment -------------------------------------------------------
bool mpi_built() {
#ifdef LATENTLAB_HAS_MPI
  return true;
#else
  return false;
#endif
}

bool nccl_built() {
#ifdef LATENTLAB_HAS_NCCL
  return true;
#else
  return false;
#endif
}

int launcher_world_size() {
  for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE"}) {
    const char* v = std::getenv(name);
    if (v == nullptr || *v == '\0') continue;
    char* end = nullptr;
    const long size = std::strtol(v, &end, 10);
    if (*end != '\0' || size < 1 || size > (1 << 24)) {
      throw std::runtime_error(std::string(name) + "='" + v + "' (set by the MPI launcher) is not a number of processes");
    }
    return static_cast<int>(size);
  }
  return 0;
}

double timeout_seconds() {
  const char* v = std::getenv("LATENTLAB_DIST_TIMEOUT_S");
  if (v == nullptr || *v == '\0') return 300.0;
  char* end = nullptr;
  errno = 0;
  const double s = std::strtod(v, &end);
  if (*end != '\0' || errno != 0 || !std::isfinite(s) || s < 0) {
    throw std::invalid_argument(std::string("LATENTLAB_DIST_TIMEOUT_S='") + v +
                                "' is not a number of seconds >= 0 (0: wait without limit)");
  }
  return s;
}

namespace {

std::unique_ptr<Communicator> make_mpi(const std::string& flag) {
#ifdef LATENTLAB_HAS_MPI
  (void)flag;
  return make_mpi_communicator();
#else
  throw std::runtime_error("--dist " + flag + ": this build has no MPI (apt-get install openmpi-bin libopenmpi-dev, "
                           "or another MPI, then configure and build again)");
#endif
}

std::unique_ptr<Communicator> make_nccl(const std::string& flag) {
#ifdef LATENTLAB_HAS_NCCL
  (void)flag;
  return make_nccl_communicator();
#else
  throw std::runtime_error("--dist " + flag + ": this build has no NCCL backend (it needs the CUDA backend built "
                           "with nvcc and NCCL beside the CUDA toolkit: nccl.h and libnccl.so; MPI for several ranks)");
#endif
}

}  // namespace

std::unique_ptr<Communicator> make_communicator(const std::string& mode, Device device) {
  if (mode == "none") return std::make_unique<Local>();
  if (mode == "mpi") return make_mpi(mode);
  if (mode == "nccl") return make_nccl(mode);
  if (mode == "auto") {
    const int world = launcher_world_size();
    if (world == 0) return std::make_unique<Local>();
    if (device == Device::CUDA && nccl_built()) return make_nccl(mode);
    if (mpi_built()) return make_mpi(mode);
    if (world == 1) return std::make_unique<Local>();
    throw std::runtime_error("--dist auto: an MPI launcher started " + std::to_string(world) +
                             " processes, but this build has no MPI, so each would train alone "
                             "(apt-get install openmpi-bin libopenmpi-dev, then configure and build again)");
  }
  throw std::invalid_argument("--dist '" + mode + "': expected auto, none, mpi or nccl");
}

namespace detail {

void exit_with_line(int rank, const std::string& what) {
  const std::string line = "latentlab: rank " + std::to_string(rank) + ": " + what + "; exiting\n";
  std::fputs(line.c_str(), stderr);
  std::fflush(stderr);
  std::fflush(stdout);
  std::_Exit(kNoAnswerExitStatus);
}

void exit_no_answer(int rank, double timeout_s, const char* call) {
  char seconds[32];
  std::snprintf(seconds, sizeof seconds, "%g", timeout_s);
  exit_with_line(rank, std::string("no answer from the other ranks within ") + seconds + " s in " + call +
                           " (did a rank die?)");
}

}  // namespace detail

}  // namespace ll::dist
