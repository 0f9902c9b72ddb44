// mpi_communicator.cpp: the MPI backend (mpi_communicator.h says the algorithm). Every collective
// is MPI's non-blocking form (MPI-3.1, chapter 5.12 "Nonblocking Collective Operations") polled by
// detail::wait_until, so that the wait has a limit; errors come back as return codes
// (MPI_ERRORS_RETURN on our communicator) and end the process with one line naming the call.
#include "engine/dist/mpi_communicator.h"

#include <mpi.h>

#include <algorithm>
#include <climits>
#include <exception>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/dist/wait.h"

namespace ll::dist {
namespace {

int g_live = 0;                   // communicators alive in this process
bool g_we_initialized = false;    // MPI_Init was ours, so MPI_Finalize is ours too

class MpiCommunicator final : public Communicator {
 public:
  explicit MpiCommunicator(const MpiOptions& options);
  ~MpiCommunicator() override;
  MpiCommunicator(const MpiCommunicator&) = delete;
  MpiCommunicator& operator=(const MpiCommunicator&) = delete;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  const char* backend() const override { return "mpi"; }
  Device buffer_device() const override { return Device::CPU; }
  void all_reduce_sum(float* data, int64_t n) override;
  void all_reduce_mean(float* data, int64_t n) override;
  void broadcast(void* bytes, size_t n, int root) override;
  void all_gather(const void* mine, void* all, size_t n) override;
  void barrier() override;

 private:
  void check(int err, const char* call) const;
  void wait(MPI_Request& request, const char* call) const;

  MPI_Comm comm_ = MPI_COMM_NULL;
  int rank_ = 0;
  int size_ = 1;
  double timeout_s_ = 0;
  int64_t chunk_ = 0;
  std::vector<float> rows_;  // all_reduce_sum: every rank's values of this rank's slice, a row per rank
};

MpiCommunicator::MpiCommunicator(const MpiOptions& options)
    : timeout_s_(options.timeout_s < 0 ? timeout_seconds() : options.timeout_s), chunk_(options.chunk_elements) {
  if (chunk_ < 1 || chunk_ > INT_MAX) {
    throw std::invalid_argument("MpiOptions::chunk_elements must be in 1 .. " + std::to_string(INT_MAX) + ", got " +
                                std::to_string(chunk_));
  }
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (finalized) {
    throw std::runtime_error("MPI was finalized already in this process (MPI cannot start twice): "
                             "keep one communicator for the life of the program");
  }
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (!initialized) {
    int provided = 0;
    if (MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) {
      throw std::runtime_error("MPI_Init_thread failed");
    }
    g_we_initialized = true;
    // Open MPI reports some errors of non-blocking collectives on MPI_COMM_WORLD rather than on the
    // request's communicator; where the program's MPI is ours, those come back as codes too.
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  }
  MPI_Comm_rank(MPI_COMM_WORLD, &rank_);  // for the lines below, before our communicator exists
  // A duplicate of MPI_COMM_WORLD (MPI_Comm_idup, itself a collective, so it waits with a limit
  // like the rest): our messages cannot match the program's own or another library's.
  MPI_Request request = MPI_REQUEST_NULL;
  check(MPI_Comm_idup(MPI_COMM_WORLD, &comm_, &request), "MPI_Comm_idup");
  wait(request, "startup");
  check(MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN), "MPI_Comm_set_errhandler");
  check(MPI_Comm_rank(comm_, &rank_), "MPI_Comm_rank");
  check(MPI_Comm_size(comm_, &size_), "MPI_Comm_size");
  ++g_live;
}

MpiCommunicator::~MpiCommunicator() {
  --g_live;
  // On the way out of an exception the other ranks will not come to the barrier, and MPI_Finalize
  // would wait for them: leave MPI alone; this process exits nonzero and mpirun stops the job.
  if (std::uncaught_exceptions() > 0) return;
  // Every rank here before MPI_Finalize, which waits for all of them without a limit of its own.
  MPI_Request request = MPI_REQUEST_NULL;
  check(MPI_Ibarrier(comm_, &request), "MPI_Ibarrier");
  wait(request, "the barrier before MPI_Finalize");
  MPI_Comm_free(&comm_);
  if (g_live == 0 && g_we_initialized) MPI_Finalize();
}

void MpiCommunicator::check(int err, const char* call) const {
  if (err == MPI_SUCCESS) return;
  char message[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(err, message, &length);
  detail::exit_with_line(rank_, std::string(call) + " failed: " + std::string(message, static_cast<size_t>(length)) +
                                    " (did a rank die?)");
}

void MpiCommunicator::wait(MPI_Request& request, const char* call) const {
  detail::wait_until(
      [&] {
        int done = 0;
        check(MPI_Test(&request, &done, MPI_STATUS_IGNORE), call);
        return done != 0;
      },
      rank_, timeout_s_, call);
}

void MpiCommunicator::all_reduce_sum(float* data, int64_t n) {
  if (n < 0) throw std::invalid_argument("all_reduce_sum: negative length " + std::to_string(n));
  if (size_ == 1 || n == 0) return;
  const int p = size_;
  std::vector<int> length(p), offset(p), row_length(p), row_offset(p);
  std::vector<const float*> rows(p);
  for (int64_t start = 0; start < n; start += chunk_) {
    const int c = static_cast<int>(std::min(chunk_, n - start));
    // Slice j of the chunk is rank j's: c / p elements, one more for the first c % p ranks.
    for (int j = 0, at = 0; j < p; ++j) {
      length[j] = c / p + (j < c % p ? 1 : 0);
      offset[j] = at;
      at += length[j];
    }
    const int mine = length[rank_];
    for (int r = 0; r < p; ++r) {
      row_length[r] = mine;
      row_offset[r] = r * mine;
    }
    rows_.resize(static_cast<size_t>(p) * static_cast<size_t>(mine));
    MPI_Request request = MPI_REQUEST_NULL;
    check(MPI_Ialltoallv(data + start, length.data(), offset.data(), MPI_FLOAT, rows_.data(), row_length.data(),
                         row_offset.data(), MPI_FLOAT, comm_, &request),
          "MPI_Ialltoallv");
    wait(request, "all_reduce");
    if (mine > 0) {
      for (int r = 0; r < p; ++r) rows[r] = rows_.data() + static_cast<size_t>(r) * mine;
      sum_in_fixed_order(rows.data(), p, data + start + offset[rank_], mine);
    }
    check(MPI_Iallgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, data + start, length.data(), offset.data(), MPI_FLOAT,
                          comm_, &request),
          "MPI_Iallgatherv");
    wait(request, "all_reduce");
  }
}

void MpiCommunicator::all_reduce_mean(float* data, int64_t n) {
  all_reduce_sum(data, n);
  const float p = static_cast<float>(size_);
  for (int64_t i = 0; i < n; ++i) data[i] /= p;
}

void MpiCommunicator::broadcast(void* bytes, size_t n, int root) {
  if (root < 0 || root >= size_) {
    throw std::invalid_argument("broadcast: root " + std::to_string(root) + " is not a rank of " + std::to_string(size_));
  }
  // MPI counts are ints: a large buffer goes in pieces of 1 GiB.
  constexpr size_t kPiece = size_t{1} << 30;
  for (size_t at = 0; at < n; at += kPiece) {
    MPI_Request request = MPI_REQUEST_NULL;
    check(MPI_Ibcast(static_cast<char*>(bytes) + at, static_cast<int>(std::min(kPiece, n - at)), MPI_BYTE, root, comm_,
                     &request),
          "MPI_Ibcast");
    wait(request, "broadcast");
  }
}

void MpiCommunicator::all_gather(const void* mine, void* all, size_t n) {
  if (n > static_cast<size_t>(INT_MAX)) throw std::invalid_argument("all_gather: " + std::to_string(n) + " bytes per rank is over 2 GiB");
  if (n == 0) return;
  // MPI forbids a send buffer inside the receive buffer unless it says so (MPI_IN_PLACE).
  const void* send = mine == static_cast<char*>(all) + static_cast<size_t>(rank_) * n ? MPI_IN_PLACE : mine;
  MPI_Request request = MPI_REQUEST_NULL;
  check(MPI_Iallgather(send, static_cast<int>(n), MPI_BYTE, all, static_cast<int>(n), MPI_BYTE, comm_, &request),
        "MPI_Iallgather");
  wait(request, "all_gather");
}

void MpiCommunicator::barrier() {
  MPI_Request request = MPI_REQUEST_NULL;
  check(MPI_Ibarrier(comm_, &request), "MPI_Ibarrier");
  wait(request, "barrier");
}

}  // namespace

std::unique_ptr<Communicator> make_mpi_communicator(const MpiOptions& options) {
  return std::make_unique<MpiCommunicator>(options);
}

}  // namespace ll::dist
