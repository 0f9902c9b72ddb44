// serve_http.h: the explorer (serve_api.h) behind an HTTP server (cpp-httplib), for `latentlab
// serve` and its tests. The server only passes requests through: method, path and body go to
// Explorer::handle, its response comes back; httplib stays out of this header.
//
// Bounds that keep a client from holding the server: a pool of `threads` worker threads (a
// connection holds one while it is open), a read and a write timeout of 5 s per request, idle
// keep-alive connections closed after 2 s, request bodies over 1 MiB refused by httplib before
// they are read (413), every other bound (serve_api.h) checked by the explorer.
//
// DNS rebinding: a web page the user visits may resolve its own name to 127.0.0.1 and so reach a
// loopback server as "same origin". Bound to a loopback address, the server therefore answers
// only requests whose Host header names a loopback address or localhost (400 otherwise).
#pragma once
#include <memory>
#include <string>

#include "apps/serve_api.h"

namespace ll::app {

class ExplorerServer {
 public:
  ExplorerServer(Explorer& explorer, int threads);
  ~ExplorerServer();
  ExplorerServer(const ExplorerServer&) = delete;
  ExplorerServer& operator=(const ExplorerServer&) = delete;

  // Binds host:port (port 0: a free port the system picks) and returns the port. Throws
  // std::runtime_error naming the address when it cannot (in use, not an address of this host).
  int bind(const std::string& host, int port);
  // Serves until stop(); returns false when it stopped on an error rather than on stop().
  bool run();
  // From any thread (not from a signal handler): run() returns once the requests in flight end.
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Whether `host` is a loopback address or name: "localhost", 127.0.0.0/8, "::1".
bool is_loopback_host(const std::string& host);

}  // namespace ll::app
