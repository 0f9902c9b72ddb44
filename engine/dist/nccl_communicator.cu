// nccl_communicator.cu: the NCCL backend (nccl_communicator.h says what it does and that it has not
// yet run on a GPU). A .cu file, compiled by nvcc like kernels/cuda, for its one kernel: the
// division of all_reduce_mean.
#include "engine/dist/nccl_communicator.h"

#include <cuda_runtime.h>
#include <nccl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <exception>
#include <stdexcept>
#include <string>
#include <vector>

#ifdef LATENTLAB_HAS_MPI
#include "engine/dist/mpi_communicator.h"
#endif
#include "engine/dist/wait.h"
#include "kernels/cuda/check.cuh"
#include "kernels/cuda_runtime.h"

namespace ll::dist {
namespace {

// x[i] /= p, as the CPU does (nvcc's default -prec-div=true: an IEEE-754 division).
__global__ void divide_kernel(float* x, int64_t n, float p) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) x[i] = x[i] / p;
}

// The communicator of the host-side calls and of the start-up: MPI where the build has it; else one
// process (Local), which is one NCCL rank, refused under a launcher of several processes.
std::unique_ptr<Communicator> host_communicator(double timeout_s) {
#ifdef LATENTLAB_HAS_MPI
  return make_mpi_communicator(MpiOptions{timeout_s});
#else
  (void)timeout_s;
  if (launcher_world_size() > 1) {
    throw std::runtime_error("--dist nccl: this build has no MPI, which starts NCCL across processes, so it runs one "
                             "process only (apt-get install openmpi-bin libopenmpi-dev, then configure and build again)");
  }
  return std::make_unique<Local>();
#endif
}

std::string nccl_message(ncclResult_t r, ncclComm_t comm) {
  std::string m = ncclGetErrorString(r);
  const char* last = ncclGetLastError(comm);
  if (last != nullptr && *last != '\0') m += std::string(" (") + last + ")";
  return m;
}

class NcclCommunicator final : public Communicator {
 public:
  explicit NcclCommunicator(const NcclOptions& options);
  ~NcclCommunicator() override;
  NcclCommunicator(const NcclCommunicator&) = delete;
  NcclCommunicator& operator=(const NcclCommunicator&) = delete;

  int rank() const override { return host_->rank(); }
  int size() const override { return host_->size(); }
  const char* backend() const override { return "nccl"; }
  Device buffer_device() const override { return Device::CUDA; }
  void all_reduce_sum(float* data, int64_t n) override;
  void all_reduce_mean(float* data, int64_t n) override;
  void broadcast(void* bytes, size_t n, int root) override { host_->broadcast(bytes, n, root); }
  void all_gather(const void* mine, void* all, size_t n) override { host_->all_gather(mine, all, n); }
  void barrier() override { host_->barrier(); }

 private:
  // Waits for the compute stream (and so for the NCCL call on it), see nccl_communicator.h.
  void wait_for_stream(const char* call);

  std::unique_ptr<Communicator> host_;  // MPI: the bootstrap, and the calls on host memory
  ncclComm_t comm_ = nullptr;
  double timeout_s_ = 0;
};

NcclCommunicator::NcclCommunicator(const NcclOptions& options)
    : host_(host_communicator(options.timeout_s)),
      timeout_s_(options.timeout_s < 0 ? timeout_seconds() : options.timeout_s) {
  // The ranks on this host, in rank order, take the GPUs in order.
  constexpr size_t kName = 256;
  char name[kName] = {};
  ::gethostname(name, kName - 1);
  std::vector<char> names(kName * static_cast<size_t>(size()));
  host_->all_gather(name, names.data(), kName);
  int local_rank = 0, local_size = 0;
  for (int r = 0; r < size(); ++r) {
    if (std::strncmp(names.data() + kName * static_cast<size_t>(r), name, kName) != 0) continue;
    if (r < rank()) ++local_rank;
    ++local_size;
  }
  int devices = 0;
  const cudaError_t err = cudaGetDeviceCount(&devices);
  if (err != cudaSuccess || devices == 0) {
    throw std::runtime_error("--dist nccl: rank " + std::to_string(rank()) + " has no GPU (" +
                             (err != cudaSuccess ? cudaGetErrorString(err) : "the CUDA runtime reports no devices") + ")");
  }
  if (local_size > devices) {
    throw std::runtime_error("--dist nccl: " + std::to_string(local_size) + " ranks on host " + name + " but " +
                             std::to_string(devices) + " GPUs: NCCL needs a GPU per rank (start fewer processes)");
  }
  LL_CUDA_CHECK(cudaSetDevice(local_rank));

  // Rank 0's unique id, and whether it could make one, to every rank (so that all throw together).
  struct {
    int32_t ok = 0;
    ncclUniqueId id{};
  } start;
  ncclResult_t id_result = ncclSuccess;
  if (rank() == 0) {
    id_result = ncclGetUniqueId(&start.id);
    start.ok = id_result == ncclSuccess ? 1 : 0;
  }
  host_->broadcast(&start, sizeof start, 0);
  if (!start.ok) {
    throw std::runtime_error(std::string("--dist nccl: ncclGetUniqueId failed on rank 0") +
                             (rank() == 0 ? std::string(": ") + ncclGetErrorString(id_result) : std::string()));
  }
  const ncclResult_t r = ncclCommInitRank(&comm_, size(), start.id, rank());
  if (r != ncclSuccess) {
    throw std::runtime_error("--dist nccl: ncclCommInitRank failed on rank " + std::to_string(rank()) + ": " +
                             nccl_message(r, nullptr));
  }
}

NcclCommunicator::~NcclCommunicator() {
  if (comm_ == nullptr) return;
  if (std::uncaught_exceptions() > 0) {  // the others will not come: abort rather than wait
    ncclCommAbort(comm_);
    return;
  }
  wait_for_stream("the last all_reduce");
  host_->barrier();  // every rank is done with NCCL: destroying it cannot wait for a missing peer
  ncclCommDestroy(comm_);
}

void NcclCommunicator::wait_for_stream(const char* call) {
  const cudaStream_t stream = kernels::cuda::compute_stream();
  detail::wait_until(
      [&] {
        ncclResult_t async = ncclSuccess;
        ncclCommGetAsyncError(comm_, &async);
        if (async != ncclSuccess && async != ncclInProgress) {
          const std::string m = nccl_message(async, comm_);
          ncclCommAbort(comm_);
          detail::exit_with_line(rank(), std::string("NCCL error in ") + call + ": " + m + " (did a rank die?)");
        }
        const cudaError_t e = cudaStreamQuery(stream);
        if (e == cudaErrorNotReady) return false;
        if (e != cudaSuccess) detail::exit_with_line(rank(), std::string("CUDA error in ") + call + ": " + cudaGetErrorString(e));
        return true;
      },
      rank(), timeout_s_, call, [&] { ncclCommAbort(comm_); });
}

void NcclCommunicator::all_reduce_sum(float* data, int64_t n) {
  if (n < 0) throw std::invalid_argument("all_reduce_sum: negative length " + std::to_string(n));
  if (n == 0) return;
  const ncclResult_t r = ncclAllReduce(data, data, static_cast<size_t>(n), ncclFloat, ncclSum, comm_,
                                       kernels::cuda::compute_stream());
  if (r != ncclSuccess) detail::exit_with_line(rank(), "ncclAllReduce failed: " + nccl_message(r, comm_));
  wait_for_stream("all_reduce");
}

void NcclCommunicator::all_reduce_mean(float* data, int64_t n) {
  if (n < 0) throw std::invalid_argument("all_reduce_mean: negative length " + std::to_string(n));
  if (n == 0) return;
  const ncclResult_t r = ncclAllReduce(data, data, static_cast<size_t>(n), ncclFloat, ncclSum, comm_,
                                       kernels::cuda::compute_stream());
  if (r != ncclSuccess) detail::exit_with_line(rank(), "ncclAllReduce failed: " + nccl_message(r, comm_));
  constexpr int kThreads = 256;
  const int64_t blocks = std::min<int64_t>((n + kThreads - 1) / kThreads, 4096);
  divide_kernel<<<static_cast<unsigned>(blocks), kThreads, 0, kernels::cuda::compute_stream()>>>(
      data, n, static_cast<float>(size()));
  LL_CUDA_CHECK_LAUNCH();
  wait_for_stream("all_reduce");
}

}  // namespace

std::unique_ptr<Communicator> make_nccl_communicator(const NcclOptions& options) {
  return std::make_unique<NcclCommunicator>(options);
}

}  // namespace ll::dist
