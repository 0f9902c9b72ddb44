// cli_files.h: what the subcommands share about the files they are told to write.
#pragma once
#include <CLI/CLI.hpp>
#include <string>

namespace ll::app {

inline bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// A check for an output option that writes a PNG picture: a name that does not end in .png is
// refused before any work (a PNG written under another name is a file that other programs misread).
inline CLI::Validator png_file() {
  return CLI::Validator(
      [](std::string& path) -> std::string {
        return ends_with(path, ".png") ? "" : "must name a .png file (a PNG picture is written), got '" + path + "'";
      },
      "FILE.png", "png_file");
}

}  // namespace ll::app
