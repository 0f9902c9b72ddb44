#include "apps/run_dir.h"
#include "apps/cli_files.h"

#include "apps/train_control.h"
#include "engine/autograd.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <exception>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <nlohmann/json.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <type_traits>

namespace ll::app {

namespace fs = std::filesystem;

std::string model_path(const std::string& dir) { return (fs::path(dir) / "model.safetensors").string(); }
std::string optimizer_path(const std::string& dir) { return (fs::path(dir) / "optimizer.safetensors").string(); }
std::string metrics_path(const std::string& dir) { return (fs::path(dir) / "metrics.jsonl").string(); }

namespace {

// Reads the checkpoint `path` (its metadata into `metadata`), builds the model that its "config"
// describes and loads the tensors into it. Each failure is one std::runtime_error naming the file:
// no configuration ("no <kind> configuration ..."), a configuration from_json refuses (prefixed by
// `bad_config`), a file that holds fewer numbers than the configuration's `parameters` (refused
// before the model is built: check_holds_parameters), tensors that do not fit the model.
template <typename Model, typename Config, typename Count>
std::unique_ptr<Model> load_model_file(const std::string& path, Metadata& metadata, const std::string& kind,
                                       const std::string& bad_config, Count parameters) {
  const auto tensors = load_tensors(path, &metadata);
  const auto it = metadata.find("config");
  if (it == metadata.end()) throw std::runtime_error(path + ": no " + kind + " configuration in the file's metadata");
  Config config;
  try {
    config = Config::from_json(it->second);
  } catch (const std::invalid_argument& e) {
    throw std::runtime_error(path + ": " + bad_config + e.what());
  }
  check_holds_parameters(path, tensors, parameters(config));
  Generator init(0);  // the values are replaced by the checkpoint's
  auto model = std::make_unique<Model>(config, init);
  try {
    model->load_state_dict(tensors);
  } catch (const std::invalid_argument& e) {
    throw std::runtime_error(path + ": " + e.what());
  }
  return model;
}

}  // namespace

LoadedRun load_run(const std::string& dir) {
  if (!fs::is_directory(dir)) {
    throw std::runtime_error("run directory '" + dir + "' does not exist: train a model first (latentlab train vae --out " + dir + ")");
  }
  const std::string path = model_path(dir);
  if (!fs::exists(path)) {
    // Another kind of run: say what it is and what this command needs.
    const char* other = fs::exists(fs::path(dir) / "generator.safetensors")    ? "a GAN (generator.safetensors)"
                        : fs::exists(fs::path(dir) / "classifier.safetensors") ? "a classifier (classifier.safetensors)"
                                                                               : nullptr;
    if (other) {
      throw std::runtime_error("'" + dir + "' holds " + other +
                               ", and this command works on autoencoder and VAE runs (latentlab train ae|vae)");
    }
    throw std::runtime_error("'" + dir + "' holds no model.safetensors: train a model first (latentlab train vae --out " + dir + ")");
  }
  LoadedRun run;
  run.model = load_model_file<models::Autoencoder, models::VaeConfig>(
      path, run.metadata, "model", "", [](const models::VaeConfig& c) { return c.num_parameters(); });
  return run;
}

GenerativeRun GenerativeRun::open(const std::string& dir) {
  GenerativeRun run;
  run.dir_ = dir;
  const std::string gan_path = (fs::path(dir) / "generator.safetensors").string();
  if (!fs::exists(gan_path)) {
    LoadedRun vae = load_run(dir);  // says what to do when DIR holds no model of either kind
    run.vae_ = std::move(vae.model);
    run.metadata_ = std::move(vae.metadata);
    run.vae_->eval();
    return run;
  }
  try {
    run.gan_ = load_model_file<models::GanGenerator, models::GanConfig>(
        gan_path, run.metadata_, "GAN", "bad GAN configuration in the metadata: ",
        [](const models::GanConfig& c) { return c.generator_parameters(); });
  } catch (const std::exception&) {
    // A pix2pix run also holds a generator.safetensors: name it rather than call its configuration bad.
    const std::exception_ptr first = std::current_exception();  // names what is wrong with the file
    Metadata meta;
    try {
      load_tensors(gan_path, &meta);
    } catch (const std::exception&) {
      std::rethrow_exception(first);
    }
    if (meta["config"].find("\"model\":\"pix2pix\"") != std::string::npos) {
      throw std::runtime_error("'" + dir + "' holds a pix2pix run (latentlab train pix2pix), which translates images and has no "
                               "latent space; this command works on VAE and GAN runs");
    }
    std::rethrow_exception(first);
  }
  run.gan_->eval();
  return run;
}

std::string GenerativeRun::data_name() const {
  const auto it = metadata_.find("data");
  return it == metadata_.end() ? "" : it->second;
}

int64_t GenerativeRun::latent_dim() const { return gan_ ? gan_->config().nz : vae_->config().latent_dim; }

std::string GenerativeRun::describe() const {
  return gan_ ? std::string(models::gan_arch_name(gan_->config().arch)) : vae_->config().describe();
}

int64_t GenerativeRun::image_height() const { return gan_ ? gan_->config().image_size() : vae_->config().height; }

int64_t GenerativeRun::image_channels() const { return gan_ ? gan_->config().channels : vae_->config().channels; }

int64_t GenerativeRun::num_classes() const { return gan_ && gan_->config().conditional() ? gan_->config().num_classes : 0; }

void GenerativeRun::to(Device device) {
  if (gan_) gan_->to(device);
  else vae_->to(device);
}

std::vector<int32_t> GenerativeRun::labels(int64_t n, int64_t label) const {
  if (gan_) return gan_->config().labels(n, label);
  if (label >= 0) throw std::invalid_argument("--label is for the conditional GAN (cgan); this run is " + describe());
  return {};
}

Tensor GenerativeRun::decode(const Tensor& z, const std::vector<int32_t>& labels) {
  if (gan_) return gan_->images(z, labels);
  NoGradGuard no_grad;
  return vae_->generate(z);
}

models::Autoencoder& GenerativeRun::autoencoder(const std::string& what) {
  if (!vae_) {
    throw std::invalid_argument(what + " needs an encoder, and '" + dir_ + "' is a GAN run (" + describe() +
                                "), which has no encoder: use codes drawn from its noise instead");
  }
  return *vae_;
}

models::GanGenerator& GenerativeRun::generator(const std::string& what) {
  if (!gan_) {
    throw std::invalid_argument(what + " needs a GAN run (train dcgan|cgan|gan128), and '" + dir_ + "' is " +
                                describe() + ", which has no generator network to walk the noise of");
  }
  return *gan_;
}

data::Dataset load_test_set(const std::string& name, const models::VaeConfig& c, const std::string& what) {
  data::Dataset test = data::load_dataset(name, data::Split::Test);
  if (test.channels != c.channels || test.height != c.height || test.width != c.width) {
    auto shape = [](int64_t ch, int64_t h, int64_t w) { return std::to_string(ch) + "x" + std::to_string(h) + "x" + std::to_string(w); };
    throw std::invalid_argument((what.empty() ? "" : what + " ") + name + " has " + shape(test.channels, test.height, test.width) +
                                " images; the model takes " + shape(c.channels, c.height, c.width));
  }
  return test;
}

std::string setting_text(double value) { return nlohmann::json(value).dump(); }

namespace {
std::string flag_value_text(double v) { return setting_text(v); }
std::string flag_value_text(int64_t v) { return std::to_string(v); }

template <typename T>
void resume_setting_impl(const Metadata& meta, const std::string& path, const char* key, const char* flag, bool given,
                         T& value) {
  const auto it = meta.find(key);
  if (it == meta.end()) return;  // written before the run recorded it
  T recorded{};
  const std::string& text = it->second;
  char* end = nullptr;
  errno = 0;
  if constexpr (std::is_same_v<T, double>) {
    recorded = std::strtod(text.c_str(), &end);
  } else {
    recorded = std::strtoll(text.c_str(), &end, 10);
  }
  if (text.empty() || *end != '\0' || errno != 0) {
    throw std::runtime_error(path + ": the metadata's \"" + std::string(key) + "\" is \"" + text.substr(0, 40) +
                             "\", not a number (a damaged or edited file)");
  }
  if (!given) {
    value = recorded;
  } else if (recorded != value) {
    std::cerr << "latentlab: --resume with " << flag << " " << flag_value_text(value) << ": the run trained with "
              << flag_value_text(recorded) << " so far, and goes on with " << flag_value_text(value) << "\n";
  }
}
}  // namespace

void resume_setting(const Metadata& meta, const std::string& path, const char* key, const char* flag, bool given,
                    double& value) {
  resume_setting_impl(meta, path, key, flag, given, value);
}
void resume_setting(const Metadata& meta, const std::string& path, const char* key, const char* flag, bool given,
                    int64_t& value) {
  resume_setting_impl(meta, path, key, flag, given, value);
}

namespace {

constexpr const char* kCommitRecord = "checkpoint.commit";
constexpr const char* kStaged = ".next";

[[noreturn]] void fail_write(const std::string& path, const std::string& step, int err) {
  throw std::runtime_error("cannot write '" + path + "': " + step + ": " + std::strerror(err));
}

// Makes renames and removals in DIR durable. Best effort: some file systems refuse fsync on a
// directory.
void sync_dir(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

// The pid of a temporary file's name "<name>.tmp.<pid>", or -1 when the name is not one.
long temp_file_pid(const std::string& name) {
  const size_t at = name.rfind(".tmp.");
  if (at == std::string::npos || at + 5 == name.size()) return -1;
  long pid = 0;
  for (size_t i = at + 5; i < name.size(); ++i) {
    if (name[i] < '0' || name[i] > '9' || pid > 100000000) return -1;
    pid = pid * 10 + (name[i] - '0');
  }
  return pid;
}

// Renames each staged file of `names` over its final name; a file already renamed (a commit that
// was interrupted halfway) is skipped.
void apply_commit(const std::string& dir, int64_t epoch, const std::vector<std::string>& names, bool live) {
  for (size_t i = 0; i < names.size(); ++i) {
    const std::string to = (fs::path(dir) / names[i]).string();
    const std::string from = to + kStaged;
    if (::rename(from.c_str(), to.c_str()) != 0 && errno != ENOENT) {
      throw std::runtime_error("cannot rename '" + from + "' to '" + to + "': " + std::strerror(errno) +
                               " (the checkpoint of epoch " + std::to_string(epoch) + " is recorded in " +
                               (fs::path(dir) / kCommitRecord).string() + "; the next training in " + dir +
                               " completes it)");
    }
    if (live && i + 1 == names.size() / 2) test_point("epoch" + std::to_string(epoch) + ":half-applied");
  }
  sync_dir(dir);
}

}  // namespace

void write_file_atomic(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) fail_write(path, "creating '" + tmp + "'", errno);
  auto fail = [&](const std::string& step, int err) {
    ::close(fd);
    ::unlink(tmp.c_str());
    fail_write(path, step + " '" + tmp + "'", err);
  };
  size_t written = 0;
  while (written < text.size()) {
    const ssize_t n = ::write(fd, text.data() + written, text.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail("writing", errno);
    written += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) fail("flushing", errno);
  if (::close(fd) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    fail_write(path, "closing '" + tmp + "'", err);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    fail_write(path, "renaming '" + tmp + "' into place", err);
  }
}

void append_metrics_line(const std::string& dir, const std::string& json_line) {
  const std::string path = metrics_path(dir);
  std::string text;
  if (fs::exists(path)) {
    std::ifstream f(path, std::ios::binary);
    std::ostringstream s;
    s << f.rdbuf();
    text = s.str();
  }
  write_file_atomic(path, text + json_line + "\n");
}

CheckpointSet::CheckpointSet(std::string dir, int64_t epoch) : dir_(std::move(dir)), epoch_(epoch) {}

CheckpointSet::~CheckpointSet() {
  if (committed_) return;
  for (const std::string& name : names_) ::unlink(((fs::path(dir_) / name).string() + kStaged).c_str());
}

std::string CheckpointSet::stage(const std::string& name) {
  if (committed_) throw std::logic_error("CheckpointSet::stage after commit");
  names_.push_back(name);
  return (fs::path(dir_) / name).string() + kStaged;
}

void CheckpointSet::stage_jsonl(const std::string& name, const std::vector<std::string>& lines) {
  // The lines of earlier epochs only: a line of this epoch or later can only come from a run that
  // wrote its metrics without a commit (an older latentlab), and would be doubled.
  std::string text;
  std::ifstream f(fs::path(dir_) / name, std::ios::binary);
  std::string line;
  while (std::getline(f, line)) {
    if (line.empty()) continue;
    const auto j = nlohmann::json::parse(line, nullptr, false);
    if (!j.is_discarded() && j.is_object() && j.contains("epoch") && j["epoch"].is_number_integer() &&
        j["epoch"].get<int64_t>() >= epoch_) {
      continue;
    }
    text += line + "\n";
  }
  for (const std::string& l : lines) text += l + "\n";
  write_file_atomic(stage(name), text);
}

void CheckpointSet::commit() {
  if (committed_) throw std::logic_error("CheckpointSet::commit twice");
  const std::string e = std::to_string(epoch_);
  test_point("epoch" + e + ":staged");
  // The staged files must be on disk before the record that makes them the checkpoint.
  for (const std::string& name : names_) {
    const std::string path = (fs::path(dir_) / name).string() + kStaged;
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) fail_write(path, "opening it to flush it", errno);
    const int rc = ::fsync(fd), err = errno;
    ::close(fd);
    if (rc != 0) fail_write(path, "flushing it", err);
  }
  sync_dir(dir_);
  write_file_atomic((fs::path(dir_) / kCommitRecord).string(),
                    nlohmann::json{{"epoch", epoch_}, {"files", names_}}.dump() + "\n");
  committed_ = true;
  test_point("epoch" + e + ":committed");
  apply_commit(dir_, epoch_, names_, true);
  ::unlink((fs::path(dir_) / kCommitRecord).c_str());
  sync_dir(dir_);
}

void save_checkpoint(CheckpointSet& set, int64_t epoch, int64_t saved_epoch, const std::function<void()>& write) {
  try {
    write();
    set.commit();
  } catch (const std::exception& e) {
    const std::string what = e.what();
    // A failure after the commit record (a rename) says itself how the epoch will be completed.
    if (what.find(kCommitRecord) != std::string::npos) throw std::runtime_error("saving epoch " + std::to_string(epoch) + ": " + what);
    const std::string previous = saved_epoch > 0 ? "the last complete checkpoint (epoch " + std::to_string(saved_epoch) + ") is intact"
                                                 : "no earlier epoch was saved";
    throw std::runtime_error("saving epoch " + std::to_string(epoch) + " failed, nothing of it was kept and " + previous + ": " + what);
  }
}

void recover_run_dir(const std::string& dir) {
  const std::string record = (fs::path(dir) / kCommitRecord).string();
  if (fs::exists(record)) {
    std::ifstream f(record, std::ios::binary);
    std::ostringstream s;
    s << f.rdbuf();
    const auto j = nlohmann::json::parse(s.str(), nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains("epoch") || !j["epoch"].is_number_integer() ||
        !j.contains("files") || !j["files"].is_array()) {
      throw std::runtime_error(record + " is not a commit record latentlab wrote; move it away to train in " + dir);
    }
    std::vector<std::string> names;
    for (const auto& n : j["files"]) {
      if (!n.is_string() || n.get<std::string>().find('/') != std::string::npos || n.get<std::string>().empty() ||
          n.get<std::string>() == "." || n.get<std::string>() == "..") {
        throw std::runtime_error(record + " names a file that is not in " + dir + "; move it away to train in " + dir);
      }
      names.push_back(n.get<std::string>());
    }
    const int64_t epoch = j["epoch"].get<int64_t>();
    apply_commit(dir, epoch, names, false);
    ::unlink(record.c_str());
    sync_dir(dir);
    std::cerr << "latentlab: completed the save of epoch " << epoch << " in " << dir << " (the last run stopped while renaming its files)\n";
  }
  // Only names a training writes are touched (DIR may be a directory that holds other things).
  auto ours = [](std::string name) {
    if (ends_with(name, kStaged)) name.resize(name.size() - std::strlen(kStaged));
    return name == "metrics.jsonl" || name == "steps.jsonl" || name == kCommitRecord || ends_with(name, ".safetensors") || ends_with(name, ".png");
  };
  int removed = 0;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    const long pid = temp_file_pid(name);
    // A temporary file of a live process (another command writing into DIR) is left alone.
    const bool stale_temp = pid > 0 && pid != ::getpid() && ours(name.substr(0, name.rfind(".tmp."))) &&
                            ::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH;
    const bool staged = ends_with(name, kStaged) && ours(name);
    if ((staged || stale_temp) && it->is_regular_file()) {
      if (::unlink(it->path().c_str()) == 0) ++removed;
    }
  }
  if (removed > 0) {
    sync_dir(dir);
    std::cerr << "latentlab: removed " << removed << " unfinished file" << (removed == 1 ? "" : "s") << " of an interrupted save from " << dir
              << "\n";
  }
}

}  // namespace ll::app
