// serve_http.cpp: cpp-httplib around the explorer (serve_http.h).
#include "apps/serve_http.h"

#include <httplib.h>

#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>

namespace ll::app {

bool is_loopback_host(const std::string& host) {
  return host == "localhost" || host == "::1" || host == "[::1]" || host.rfind("127.", 0) == 0;
}

namespace {

// The host name of a Host header: "127.0.0.1:8080" -> "127.0.0.1", "[::1]:8080" -> "[::1]".
std::string host_name(const std::string& header) {
  if (!header.empty() && header[0] == '[') return header.substr(0, header.find(']') + 1);
  return header.substr(0, header.find(':'));
}

void send(httplib::Response& res, const HttpResponse& r) {
  res.status = r.status;
  for (const auto& [name, value] : r.headers) res.set_header(name, value);
  res.set_content(r.body, r.content_type);
}

std::string regex_escape(const std::string& path) {
  std::string out;
  for (const char c : path) {
    if (std::string(".^$|()[]{}*+?\\").find(c) != std::string::npos) out += '\\';
    out += c;
  }
  return out;
}

}  // namespace

struct ExplorerServer::Impl {
  Explorer& explorer;
  httplib::Server server;
  bool loopback = true;
  explicit Impl(Explorer& e) : explorer(e) {}
};

ExplorerServer::ExplorerServer(Explorer& explorer, int threads) : impl_(std::make_unique<Impl>(explorer)) {
  if (threads < 1 || threads > 256) throw std::invalid_argument("--threads must be in 1..256, got " + std::to_string(threads));
  httplib::Server& svr = impl_->server;
  svr.new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<size_t>(threads)); };
  svr.set_read_timeout(5, 0);
  svr.set_write_timeout(5, 0);
  svr.set_keep_alive_timeout(2);
  svr.set_keep_alive_max_count(1000);
  svr.set_payload_max_length(1 << 20);
  svr.set_tcp_nodelay(true);  // small responses: no Nagle delay waiting for the next segment

  Impl* impl = impl_.get();
  auto handler = [impl](const httplib::Request& req, httplib::Response& res) {
    if (impl->loopback) {
      const std::string host = req.get_header_value("Host");
      if (!is_loopback_host(host_name(host))) {
        send(res, HttpResponse{400, "application/json",
                               nlohmann::json{{"error", "this server answers requests for localhost only, not for Host '" +
                                                            host.substr(0, 40) + "'"}}
                                   .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace),
                               {}});
        return;
      }
    }
    send(res, impl->explorer.handle(req.method, req.path, req.body));
  };
  // One route per path the explorer serves, matched literally: every other path is httplib's 404
  // (with a message from the error handler below), and no path ever names a file.
  for (const std::string& path : Explorer::paths()) {
    const std::string pattern = regex_escape(path);
    svr.Get(pattern, handler);
    svr.Post(pattern, handler);
    svr.Put(pattern, handler);
    svr.Patch(pattern, handler);
    svr.Delete(pattern, handler);
    svr.Options(pattern, handler);
  }
  // httplib's own refusals (404 no route, 413 body too large, 400 unparsable request) get the same
  // JSON {"error"} body as the explorer's.
  svr.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;
    std::string message;
    if (res.status == 404) message = "no such page: " + req.path.substr(0, 40) + " (the explorer is at /)";
    else if (res.status == 413) message = "the request body is larger than 1 MiB";
    else message = "bad HTTP request (status " + std::to_string(res.status) + ")";
    res.set_content(nlohmann::json{{"error", message}}.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace), "application/json");
  });
  svr.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
    // Explorer::handle catches everything; this is for a failure in httplib's own code around it.
    res.status = 500;
    res.set_content(R"({"error":"internal error"})", "application/json");
  });
}

ExplorerServer::~ExplorerServer() { stop(); }

int ExplorerServer::bind(const std::string& host, int port) {
  if (port < 0 || port > 65535) throw std::invalid_argument("--port must be in 0..65535 (0: any free port), got " + std::to_string(port));
  impl_->loopback = is_loopback_host(host);
  const int bound = port == 0 ? impl_->server.bind_to_any_port(host) : (impl_->server.bind_to_port(host, port) ? port : -1);
  if (bound <= 0) {
    throw std::runtime_error("cannot listen on " + host + ":" + std::to_string(port) +
                             " (the port is in use, or the address is not one of this machine's)");
  }
  return bound;
}

bool ExplorerServer::run() { return impl_->server.listen_after_bind(); }

void ExplorerServer::stop() { impl_->server.stop(); }

}  // namespace ll::app
