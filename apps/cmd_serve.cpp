// cmd_serve.cpp: `latentlab serve RUN` — the latent explorer: a page and a JSON API over the latent
// tools (decode, encode, interpolate, arithmetic, traverse, the latent map, outlier scores) for one
// trained run, VAE/AE or GAN (serve_api.h says what each endpoint takes; serve_http.h how the server
// is bounded). It listens on the loopback address unless --host says otherwise: the explorer has no
// authentication, and its answers cost CPU time.
//
// Once the socket listens it prints one JSON line on stdout ({"url", "model", "latent_dim",
// "startup_s"}; with --port 0, the port the system chose is in the URL), then serves until SIGINT
// or SIGTERM.
#include <atomic>
#include <chrono>
#include <csignal>
#include <cmath>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "apps/commands.h"
#include "apps/run_dir.h"
#include "apps/serve_api.h"
#include "apps/serve_http.h"
#include "apps/train_control.h"

namespace ll::app {

namespace {

struct ServeOptions {
  std::string dir;
  std::string host = "127.0.0.1";
  int port = 8080;
  std::string data;
  int64_t map_points = 2000;
  uint64_t seed = 0;
  int threads = 16;
};

void run_serve(const ServeOptions& o) {
#ifdef LATENTLAB_NO_HTTPLIB
  (void)o;
  throw std::runtime_error("this latentlab was built without cpp-httplib, so it has no HTTP server: "
                           "apt-get install libcpp-httplib-dev pkg-config, then configure and build again");
#else
  const auto start = std::chrono::steady_clock::now();
  // A client that hangs up while its answer is being written must cost an EPIPE on that socket,
  // not the process (SIGPIPE's default action ends it).
  std::signal(SIGPIPE, SIG_IGN);
  ExplorerOptions eo;
  eo.data = o.data;
  eo.map_points = o.map_points;
  eo.seed = o.seed;
  Explorer explorer(GenerativeRun::open(o.dir), eo);
  ExplorerServer server(explorer, o.threads);
  const int port = server.bind(o.host, o.port);
  if (!is_loopback_host(o.host)) {
    std::cerr << "latentlab: warning: listening on " << o.host << ": anyone who can reach this address can use the explorer "
              << "(it has no authentication)\n";
  }
  const std::string url = "http://" + (o.host.find(':') != std::string::npos && o.host[0] != '[' ? "[" + o.host + "]" : o.host) +
                          ":" + std::to_string(port) + "/";
  const double startup = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  StopSignals signals;
  std::atomic<bool> ended{false};
  bool ok = true;
  std::thread serving([&] {
    ok = server.run();
    ended = true;
  });
  std::cout << nlohmann::json{{"url", url}, {"model", explorer.summary()}, {"startup_s", std::round(startup * 1000) / 1000}}.dump()
            << std::endl;
  std::cerr << "latentlab: serving " << o.dir << " at " << url << " (Ctrl-C stops)" << std::endl;
  // Signals only set a flag (apps/train_control.h): stopping the server is not async-signal-safe,
  // so this thread looks at the flag every 50 ms and stops it from here.
  while (!ended && StopSignals::pending() == 0) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  server.stop();
  serving.join();
  if (StopSignals::pending() != 0) {
    std::cerr << "latentlab: serve stopped (" << signal_name(StopSignals::pending()) << ")\n";
    return;
  }
  if (!ok) throw std::runtime_error("the server on " + url + " stopped on a socket error");
#endif
}

}  // namespace

void add_serve_command(CLI::App& app) {
  auto o = std::make_shared<ServeOptions>();
  CLI::App* cmd = app.add_subcommand("serve", "the latent explorer: a page and a JSON API for a trained run (VAE, AE or GAN)");
  cmd->add_option("dir", o->dir, "run directory written by latentlab train")->required();
  cmd->add_option("--port", o->port, "TCP port (0: any free port, printed)")->capture_default_str();
  cmd->add_option("--host", o->host, "address to listen on (the default is this machine only)")->capture_default_str();
  cmd->add_option("--data", o->data, "data set of the test images (default: the one the run was trained on)");
  cmd->add_option("--map-points", o->map_points, "test images on the latent map (a seeded random subset)")->capture_default_str();
  cmd->add_option("--seed", o->seed, "seed of the map's subset")->capture_default_str();
  cmd->add_option("--threads", o->threads, "worker threads (each open connection holds one)")->capture_default_str();
  cmd->callback([o] { run_serve(*o); });
}

}  // namespace ll::app
