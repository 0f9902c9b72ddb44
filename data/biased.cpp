#include "data/biased.h"

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>

namespace ll::data {

void BiasedTask::validate(int64_t num_classes) const {
  auto need = [](bool ok, const std::string& what) {
    if (!ok) throw std::invalid_argument("biased task: " + what);
  };
  need(!majority.empty() && !minority.empty() && !negative.empty(),
       "the majority, minority and negative class lists must each name at least one class");
  std::vector<int32_t> all = majority;
  all.insert(all.end(), minority.begin(), minority.end());
  all.insert(all.end(), negative.begin(), negative.end());
  for (int32_t c : all) {
    need(c >= 0 && (num_classes <= 0 || c < num_classes),
         "class " + std::to_string(c) + " is not a class of the data set" +
             (num_classes > 0 ? " (0.." + std::to_string(num_classes - 1) + ")" : ""));
  }
  std::sort(all.begin(), all.end());
  need(std::adjacent_find(all.begin(), all.end()) == all.end(), "a class is in more than one of the three lists");
  need(minority_fraction > 0.0 && minority_fraction < 1.0,
       "the minority fraction must be in (0, 1), got " + std::to_string(minority_fraction));
}

std::string BiasedTask::to_json() const {
  return nlohmann::json{{"majority", majority}, {"minority", minority}, {"negative", negative},
                        {"minority_fraction", minority_fraction}}
      .dump();
}

BiasedTask BiasedTask::from_json(const std::string& text) {
  try {
    const auto j = nlohmann::json::parse(text);
    BiasedTask t;
    t.majority = j.at("majority").get<std::vector<int32_t>>();
    t.minority = j.at("minority").get<std::vector<int32_t>>();
    t.negative = j.at("negative").get<std::vector<int32_t>>();
    t.minority_fraction = j.at("minority_fraction").get<double>();
    t.validate();
    return t;
  } catch (const std::exception& e) {
    throw std::invalid_argument(std::string("bad biased task: ") + e.what());
  }
}

std::vector<int32_t> BiasedTask::parse_classes(const std::string& text, const std::string& flag) {
  std::vector<int32_t> out;
  std::stringstream s(text);
  std::string item;
  while (std::getline(s, item, ',')) {
    size_t used = 0;
    int value = -1;
    try {
      value = std::stoi(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (item.empty() || used != item.size() || value < 0) {
      throw std::invalid_argument(flag + " takes class numbers separated by commas (e.g. 2,4), got '" + text + "'");
    }
    out.push_back(value);
  }
  if (out.empty()) throw std::invalid_argument(flag + " names no class");
  return out;
}

const char* subgroup_name(uint8_t group) {
  return group == kMajority ? "majority" : group == kMinority ? "minority" : "negative";
}

int64_t BiasedData::count(uint8_t g) const { return std::count(group.begin(), group.end(), g); }

BiasedData make_biased_binary(const Dataset& src, const BiasedTask& task, bool thin_minority) {
  if (src.labels.empty()) throw std::invalid_argument(src.name + " has no labels: a biased task needs classes");
  task.validate();
  auto in = [](const std::vector<int32_t>& list, int32_t c) { return std::find(list.begin(), list.end(), c) != list.end(); };
  int64_t n_major = 0;
  for (int32_t l : src.labels) n_major += in(task.majority, l);
  // The minority's share f of the positive side: m / (m + M) = f  <=>  m = f / (1 - f) * M.
  const int64_t keep_minor = thin_minority
                                 ? std::max<int64_t>(1, std::llround(task.minority_fraction / (1.0 - task.minority_fraction) *
                                                                     static_cast<double>(n_major)))
                                 : src.n;
  BiasedData out;
  out.data.name = src.name + " (biased binary task)";
  out.data.channels = src.channels;
  out.data.height = src.height;
  out.data.width = src.width;
  out.data.class_names = {"negative", "positive"};
  const int64_t size = src.image_size();
  int64_t minor = 0;
  for (int64_t i = 0; i < src.n; ++i) {
    const int32_t l = src.labels[static_cast<size_t>(i)];
    uint8_t g;
    if (in(task.majority, l)) {
      g = kMajority;
    } else if (in(task.minority, l)) {
      if (minor >= keep_minor) continue;
      ++minor;
      g = kMinority;
    } else if (in(task.negative, l)) {
      g = kNegative;
    } else {
      continue;
    }
    out.data.images.insert(out.data.images.end(), src.images.begin() + i * size, src.images.begin() + (i + 1) * size);
    out.data.labels.push_back(g == kNegative ? 0 : 1);
    out.source.push_back(l);
    out.group.push_back(g);
    out.source_index.push_back(i);
  }
  out.data.n = static_cast<int64_t>(out.group.size());
  std::vector<int32_t> all = task.majority;
  all.insert(all.end(), task.minority.begin(), task.minority.end());
  all.insert(all.end(), task.negative.begin(), task.negative.end());
  for (int32_t c : all) {
    if (std::find(out.source.begin(), out.source.end(), c) == out.source.end()) {
      throw std::invalid_argument("biased task: " + src.name + " has no image of class " + std::to_string(c));
    }
  }
  return out;
}

}  // namespace ll::data
