// web_assets.h: the explorer's page (apps/web/: index.html, app.js, style.css), compiled into the
// program (cmake/embed_web.cmake writes the table at build time), so that `latentlab serve` needs no
// installed files and serves only these: a request names an entry of this table, never a file.
#pragma once
#include <cstddef>
#include <vector>

namespace ll::app {

struct WebAsset {
  const char* path;          // "/index.html"
  const char* content_type;  // "text/html; charset=utf-8"
  const unsigned char* data;
  size_t size;
};

const std::vector<WebAsset>& web_assets();

}  // namespace ll::app
