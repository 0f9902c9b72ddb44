// test_dist_faults.cpp: what happens to a job when one rank fails: mpirun -np 2 runs dist_worker
// (tests/dist/dist_worker.cpp), whose rank 1 misbehaves in the way each test names, and the test
// checks the job's exit status, how long it took and what it printed. The bound that matters: no
// job outlives the timeout of communicator.h by much, whatever rank 1 does.
//
// What stops the job differs by fault. A rank that exits (crash or error) is seen by mpirun, which
// stops the others at once (Open MPI: "mpirun detected that one or more processes exited with
// non-zero status"); a rank that hangs is seen by no one but the others' timeout, whose line names
// it. Each job runs in its own process group, killed whole if it outlives a hard limit.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "engine/dist/communicator.h"
#include "tests/common/temp_dir.h"

extern char** environ;

namespace ll::dist {
namespace {

#if defined(LATENTLAB_HAS_MPI) && defined(LATENTLAB_MPIEXEC) && defined(LATENTLAB_DIST_WORKER)

struct Job {
  int status = -1;  // the exit status, or 1000 + the signal
  std::string output;
  double seconds = 0;
};

// mpirun -np 2 [--oversubscribe] dist_worker <mode>, with LATENTLAB_DIST_TIMEOUT_S=<timeout>.
Job run_job(const std::string& mode, const std::string& timeout) {
  test::TempDir dir("dist-faults");
  const std::string log = dir / "job.log";
  std::vector<std::string> args{LATENTLAB_MPIEXEC, "-np", "2"};
  if (std::string(LATENTLAB_MPIEXEC_FLAGS) != "") args.push_back(LATENTLAB_MPIEXEC_FLAGS);  // --oversubscribe
  args.push_back(LATENTLAB_DIST_WORKER);
  args.push_back(mode);
  // Open MPI refuses to run as root without the OMPI_ALLOW_RUN_AS_ROOT pair (CI runs as root; they
  // change nothing otherwise). LSAN_OPTIONS: Open MPI's own leaks left out in the sanitized build
  // (tests/dist/lsan_openmpi.supp; other builds ignore it).
  std::vector<std::string> env{"LATENTLAB_DIST_TIMEOUT_S=" + timeout, "OMPI_ALLOW_RUN_AS_ROOT=1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1",
                               "LSAN_OPTIONS=suppressions=" LATENTLAB_SOURCE_DIR "/tests/dist/lsan_openmpi.supp:fast_unwind_on_malloc=0"};
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string kv = *e;
    const std::string key = kv.substr(0, kv.find('='));
    if (std::none_of(env.begin(), env.end(), [&](const std::string& o) { return o.substr(0, o.find('=')) == key; })) {
      env.push_back(kv);
    }
  }
  std::vector<char*> argv, envp;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  for (auto& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);

  const auto start = std::chrono::steady_clock::now();
  const pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    ::setpgid(0, 0);  // mpirun and the ranks: one group, killed together past the hard limit
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(fd, STDOUT_FILENO);
    ::dup2(fd, STDERR_FILENO);
    ::execve(argv[0], argv.data(), envp.data());
    ::_exit(127);
  }
  ::setpgid(pid, pid);
  constexpr double kHardLimit = 120;
  int status = 0;
  Job job;
  for (;;) {
    const pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) break;
    if (r < 0 && errno != EINTR) break;
    if (std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() > kHardLimit) {
      ::kill(-pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      job.output = "(killed after " + std::to_string(kHardLimit) + " s)\n";
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  job.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  job.status = WIFEXITED(status) ? WEXITSTATUS(status) : WIFSIGNALED(status) ? 1000 + WTERMSIG(status) : -1;
  std::ifstream f(log);
  std::ostringstream s;
  s << f.rdbuf();
  job.output += s.str();
  return job;
}

bool has(const Job& job, const std::string& text) { return job.output.find(text) != std::string::npos; }

TEST(DistFaults, AHealthyJobEndsWell) {
  const Job job = run_job("ok", "30");
  EXPECT_EQ(job.status, 0) << job.output;
  EXPECT_TRUE(has(job, "rank 0: finished (sum 2)")) << job.output;
  EXPECT_TRUE(has(job, "rank 1: finished (sum 2)")) << job.output;
}

TEST(DistFaults, ARankThatExitsStopsTheJobAtOnce) {
  // Rank 0 waits in the all-reduce with a 60 s limit; mpirun stops it long before.
  const Job job = run_job("exit-early", "60");
  EXPECT_NE(job.status, 0) << job.output;
  EXPECT_LT(job.seconds, 30) << "mpirun should have stopped rank 0 when rank 1 exited:\n" << job.output;
  EXPECT_FALSE(has(job, "rank 0: finished")) << job.output;
  EXPECT_TRUE(has(job, "Exit code:    3") || has(job, "exit code")) << job.output;
}

TEST(DistFaults, ARankThatThrowsStopsTheJobAtOnce) {
  // Rank 1's communicator is destroyed while its exception unwinds: it must not wait in the barrier
  // before MPI_Finalize for rank 0 (which waits in the all-reduce), or the job would last the limit.
  const Job job = run_job("throw", "60");
  EXPECT_NE(job.status, 0) << job.output;
  EXPECT_LT(job.seconds, 30) << job.output;
  EXPECT_TRUE(has(job, "latentlab: rank 1: cannot read data/train.idx")) << job.output;
  EXPECT_FALSE(has(job, "rank 0: finished")) << job.output;
}

TEST(DistFaults, ARankThatHangsIsNamedByTheTimeout) {
  // Rank 1 sleeps; rank 0 gives up after 3 s with the line, and mpirun then stops rank 1.
  const Job job = run_job("hang", "3");
  EXPECT_EQ(job.status, kNoAnswerExitStatus) << job.output;
  EXPECT_TRUE(has(job, "latentlab: rank 0: no answer from the other ranks within 3 s in all_reduce (did a rank die?); exiting"))
      << job.output;
  EXPECT_GE(job.seconds, 3) << job.output;
  EXPECT_LT(job.seconds, 30) << job.output;
}

TEST(DistFaults, MismatchedConfigurationsStopTheJobAtStart) {
  const Job job = run_job("mismatch", "30");
  EXPECT_NE(job.status, 0) << job.output;
  EXPECT_LT(job.seconds, 30) << job.output;
  EXPECT_TRUE(has(job, "ranks disagree on config: rank 1 differs from rank 0 at character 11: rank 0 has \"{\"lr\": 0.0002}\", "
                       "rank 1 has \"{\"lr\": 0.001}\""))
      << job.output;
  EXPECT_FALSE(has(job, "finished")) << job.output;
}

#else

TEST(DistFaults, NeedMpi) {
  GTEST_SKIP() << "this build has no MPI (apt-get install openmpi-bin libopenmpi-dev, configure again): "
                  "the fault tests run jobs under mpirun";
}

#endif

}  // namespace
}  // namespace ll::dist
