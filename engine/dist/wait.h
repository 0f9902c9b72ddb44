// wait.h: how a rank waits for the others (internal to engine/dist). Every collective is started
// non-blocking (MPI_Ibarrier, MPI_Ialltoallv, ..., or an NCCL call on a stream) and then polled
// here, so that a missing rank costs a bounded wait and one clear line instead of a hang: a blocking
// MPI call cannot be interrupted, and MPI offers no timeout of its own.
#pragma once
#include <chrono>
#include <string>
#include <thread>

namespace ll::dist::detail {

// Prints "latentlab: rank R: <what>; exiting" to stderr and ends the process with
// kNoAnswerExitStatus, without unwinding or atexit handlers (std::_Exit): see communicator.h.
[[noreturn]] void exit_with_line(int rank, const std::string& what);

// The line for a wait that ran out: "no answer from the other ranks within T s in <call> (did a
// rank die?)".
[[noreturn]] void exit_no_answer(int rank, double timeout_s, const char* call);

// Calls done() until it returns true. Spins first (a collective whose peers are there completes in
// microseconds, and each MPI_Test call also drives MPI's progress), yields the core after a few
// polls (mpirun --oversubscribe puts several ranks on one core), and after a second of waiting
// polls once a millisecond: a rank waiting for one that evaluates or writes a checkpoint should not
// burn its core. timeout_s <= 0: no limit.
// before_exit() runs when the limit is reached, before the line (the NCCL backend aborts its
// communicator there).
template <class Done, class BeforeExit>
void wait_until(Done&& done, int rank, double timeout_s, const char* call, BeforeExit&& before_exit) {
  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  for (long polls = 0;; ++polls) {
    if (done()) return;
    if (polls < 64) continue;
    const double waited = std::chrono::duration<double>(Clock::now() - start).count();
    if (timeout_s > 0 && waited > timeout_s) {
      before_exit();
      exit_no_answer(rank, timeout_s, call);
    }
    if (waited < 1.0) {
      std::this_thread::yield();
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
}

template <class Done>
void wait_until(Done&& done, int rank, double timeout_s, const char* call) {
  wait_until(done, rank, timeout_s, call, [] {});
}

}  // namespace ll::dist::detail
