// serve_load: a bounded load test of `latentlab serve` (apps/cmd_serve.cpp).
//   serve_load --port P [--host 127.0.0.1] [--clients 8] [--requests 500] [--endpoint decode] [--seed 0]
// Each of --clients threads opens its own keep-alive connection and sends --requests requests one
// after another, timing each from send to the whole answer: /api/decode of a fresh random code
// (N(0, I), drawn per request from the client's seeded stream), or with --endpoint interpolate an
// 8-step lerp between two such codes, or batch (16 prior draws). A request is an error when it
// gets no answer, a status other than 200 or a body without its images. Prints the latency
// percentiles (nearest rank) over all requests, the throughput, and one JSON line with the same;
// exits 1 when any request failed. bench/results/serve_load.md records runs on the build machine.
#include <httplib.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

// The nearest-rank percentile p (0..100) of sorted values.
double percentile(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  const size_t rank = static_cast<size_t>(std::ceil(p / 100.0 * static_cast<double>(sorted.size())));
  return sorted[std::min(sorted.size() - 1, rank == 0 ? 0 : rank - 1)];
}

}  // namespace

int main(int argc, char** argv) {
  std::string host = "127.0.0.1", endpoint = "decode";
  int port = 0, clients = 8, requests = 500;
  unsigned seed = 0;
  CLI::App app{"serve_load: N clients x M requests against latentlab serve; latency percentiles and errors"};
  app.add_option("--host", host, "the server's address")->capture_default_str();
  app.add_option("--port", port, "the server's port")->required();
  app.add_option("--clients", clients, "concurrent clients, one connection each")->capture_default_str()->check(CLI::Range(1, 256));
  app.add_option("--requests", requests, "requests per client")->capture_default_str()->check(CLI::Range(1, 1000000));
  app.add_option("--endpoint", endpoint, "decode, interpolate or batch")->capture_default_str()->check(CLI::IsMember({"decode", "interpolate", "batch"}));
  app.add_option("--seed", seed, "seed of the codes")->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  httplib::Client probe(host, port);
  auto info_res = probe.Get("/api/info");
  if (!info_res || info_res->status != 200) {
    std::cerr << "serve_load: no explorer answers at " << host << ":" << port << "\n";
    return 1;
  }
  const json info = json::parse(info_res->body);
  const int64_t dim = info["latent_dim"];
  const bool conditional = info["conditional"];

  std::vector<std::vector<double>> latencies(static_cast<size_t>(clients));
  std::atomic<int64_t> errors{0};
  std::mutex first_error_mutex;
  std::string first_error;
  const auto start = Clock::now();
  std::vector<std::thread> threads;
  for (int c = 0; c < clients; ++c) {
    threads.emplace_back([&, c] {
      httplib::Client cl(host, port);
      cl.set_keep_alive(true);
      // httplib writes a request's headers and body separately; with Nagle's algorithm the body
      // then waits for the server's delayed ACK (40 ms on Linux), which would be measured instead
      // of the server. A browser sends small requests without that wait.
      cl.set_tcp_nodelay(true);
      cl.set_read_timeout(30, 0);
      std::mt19937 rng(seed * 1000003u + static_cast<unsigned>(c));
      std::normal_distribution<float> normal;
      auto code = [&] {
        std::vector<float> z(static_cast<size_t>(dim));
        for (float& v : z) v = normal(rng);
        return z;
      };
      std::vector<double>& mine = latencies[static_cast<size_t>(c)];
      mine.reserve(static_cast<size_t>(requests));
      for (int i = 0; i < requests; ++i) {
        json body;
        std::string path = "/api/" + endpoint;
        if (endpoint == "decode") body = {{"code", code()}};
        else if (endpoint == "interpolate") body = {{"from", {{"code", code()}}}, {"to", {{"code", code()}}}, {"steps", 8}};
        else body = {{"seed", c * requests + i}, {"n", 16}};
        if (conditional && endpoint != "batch") body["label"] = i % 2;
        const std::string text = body.dump();
        const auto t0 = Clock::now();
        auto res = cl.Post(path, text, "application/json");
        const double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
        mine.push_back(ms);
        std::string why;
        if (!res) why = "no answer (" + httplib::to_string(res.error()) + ")";
        else if (res->status != 200) why = "HTTP " + std::to_string(res->status) + ": " + res->body.substr(0, 200);
        else if (res->body.find(endpoint == "decode" ? "\"image\"" : "\"images\"") == std::string::npos) why = "no image in the answer";
        if (!why.empty()) {
          ++errors;
          std::lock_guard<std::mutex> lock(first_error_mutex);
          if (first_error.empty()) first_error = why;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  const double wall = std::chrono::duration<double>(Clock::now() - start).count();
  std::vector<double> all;
  for (const auto& l : latencies) all.insert(all.end(), l.begin(), l.end());
  std::sort(all.begin(), all.end());
  const double n = static_cast<double>(all.size());
  double mean = 0;
  for (double v : all) mean += v / n;
  auto r2 = [](double v) { return std::round(v * 100) / 100; };
  const json line{{"model", info["model"]},       {"endpoint", endpoint},
                  {"clients", clients},           {"requests_per_client", requests},
                  {"requests", all.size()},       {"errors", errors.load()},
                  {"wall_s", r2(wall)},           {"throughput_rps", r2(n / wall)},
                  {"p50_ms", r2(percentile(all, 50))}, {"p90_ms", r2(percentile(all, 90))},
                  {"p99_ms", r2(percentile(all, 99))}, {"max_ms", r2(all.back())},
                  {"mean_ms", r2(mean)}};
  std::printf("%s, /api/%s: %d clients x %d requests = %zu in %.2f s (%.0f requests/s), %lld errors\n",
              info["model"].get<std::string>().c_str(), endpoint.c_str(), clients, requests, all.size(), wall, n / wall,
              static_cast<long long>(errors.load()));
  std::printf("latency ms: p50 %.2f  p90 %.2f  p99 %.2f  max %.2f  mean %.2f\n", percentile(all, 50), percentile(all, 90),
              percentile(all, 99), all.back(), mean);
  if (!first_error.empty()) std::printf("first error: %s\n", first_error.c_str());
  std::cout << line.dump() << "\n";
  return errors.load() == 0 ? 0 : 1;
}
