// run_dir.h: the run directory that `latentlab train` writes and every other subcommand reads.
//
//   DIR/model.safetensors      the model's state_dict (PyTorch names); metadata: "config" (the model
//                              configuration as JSON), "data", "epoch", "seed", "noise_offset",
//                              and the settings --resume continues with, "lr" and "batch_size"
//   DIR/optimizer.safetensors  Adam's state (metadata "epoch"), for --resume
//   DIR/metrics.jsonl          one JSON object per epoch
//   DIR/steps.jsonl            one JSON object per training step: epoch, step, images, the step's
//                              losses (the model's own names), lr, time_s (since the epoch began)
//   DIR/samples_epoch<N>.png   8x8 grid of decoded prior samples after epoch N
//   DIR/recon.png              test images (odd rows) above their reconstructions (even rows)
//   DIR/train.lock             held (flock) by the training that writes DIR (apps/train_control.h)
// An epoch's files are saved together (CheckpointSet below): each is written under a staging name,
// and they replace the previous epoch's files only once all of them are complete, so a run that is
// killed, or meets a full disk, keeps one whole epoch: the model, its optimizer state, its metrics
// line and its pictures agree.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "engine/checkpoint.h"
#include "models/gan.h"
#include "models/vae.h"

namespace ll::app {

// The random streams of an autoencoder/VAE run: each use of randomness has its own Philox
// subsequence of the run's seed (Generator(seed, stream)).
enum VaeRunStream : uint64_t { kVaeInit = 0, kVaeNoise = 1, kVaeSamples = 2, kVaeTestNoise = 3 };

std::string model_path(const std::string& dir);
std::string optimizer_path(const std::string& dir);
std::string metrics_path(const std::string& dir);

struct LoadedRun {
  std::unique_ptr<models::Autoencoder> model;
  Metadata metadata;
};

// Loads DIR/model.safetensors and rebuilds the model from its metadata. Throws std::runtime_error
// with what to do when DIR holds no model.
LoadedRun load_run(const std::string& dir);

// A trained generative model of either kind, as the commands that decode codes into images see it
// (sample, interpolate, arithmetic, fid): an autoencoder/VAE run (DIR/model.safetensors) or a GAN
// run (DIR/generator.safetensors, written by train dcgan|cgan|gan128). The commands ask it for
// codes' images and for the encoder only where they need one, so that each has one code path.
class GenerativeRun {
 public:
  // Reads DIR's model; std::runtime_error with what to do when DIR holds neither kind.
  static GenerativeRun open(const std::string& dir);

  bool is_gan() const { return gan_ != nullptr; }
  const Metadata& metadata() const { return metadata_; }
  // The data set the run was trained on ("" when its metadata does not say).
  std::string data_name() const;
  // The length of a code: the VAE's latent_dim, the GAN's nz.
  int64_t latent_dim() const;
  // "VAE (conv, D=16)"-style for autoencoders, the architecture's name ("dcgan28") for GANs.
  std::string describe() const;
  // The height of the images (for the sheets' automatic upscale); their channels (1 or 3).
  int64_t image_height() const;
  int64_t image_channels() const;
  // The classes a conditional GAN draws (its `label` takes 0..num_classes() - 1); 0 for other runs.
  int64_t num_classes() const;
  void to(Device device);
  // Class labels for n images: a conditional GAN's (`label`, or cycling when it is -1); empty
  // otherwise, where a `label` >= 0 is refused (std::invalid_argument naming --label).
  std::vector<int32_t> labels(int64_t n, int64_t label) const;
  // Images in [0, 1], (N, C, H, W), decoded from codes z (N, D): the decoder's sigmoid for an
  // autoencoder, the generator's tanh mapped from [-1, 1] for a GAN. No graph is recorded.
  Tensor decode(const Tensor& z, const std::vector<int32_t>& labels = {});
  // The autoencoder; a GAN run (which has no encoder) throws std::invalid_argument saying that
  // `what` needs one.
  models::Autoencoder& autoencoder(const std::string& what);
  // The GAN's generator (for commands that differentiate through it: steer); an autoencoder run
  // throws std::invalid_argument saying that `what` needs a GAN run.
  models::GanGenerator& generator(const std::string& what);

 private:
  std::string dir_;
  Metadata metadata_;
  std::unique_ptr<models::Autoencoder> vae_;
  std::unique_ptr<models::GanGenerator> gan_;
};

// The test split of data set `name` for a model of configuration c: std::invalid_argument when its
// images are not the model's size (`what` starts the message: the flag or the data set's role).
data::Dataset load_test_set(const std::string& name, const models::VaeConfig& c, const std::string& what = "");

// The training settings a run records in its metadata besides its model ("lr", "batch_size", and
// for GANs "beta1"), so that --resume continues with the run's own: a flag that was not given takes
// the recorded value; a flag given with another value takes effect from the resumed epoch on, and a
// line on stderr says so (e.g. a lower --lr after the loss became NaN). A run written before the key
// existed keeps the flag's value. A recorded value that is not a number: std::runtime_error.
// setting_text is how a value is written: the shortest decimal that reads back as the same double.
std::string setting_text(double value);
void resume_setting(const Metadata& meta, const std::string& path, const char* key, const char* flag, bool given,
                    double& value);
void resume_setting(const Metadata& meta, const std::string& path, const char* key, const char* flag, bool given,
                    int64_t& value);

// (The loss over a data set, evaluate_dataset, is in models/vae.h.)
using models::DatasetLoss;
using models::evaluate_dataset;

// Appends one line to DIR/metrics.jsonl (the file is rewritten through a temporary file).
void append_metrics_line(const std::string& dir, const std::string& json_line);

// Writes `text` to `path` through a temporary file (`path.tmp.<pid>`, fsync'ed) and a rename. Throws
// std::runtime_error naming the file and the system's reason (e.g. "No space left on device"); the
// temporary file is removed then.
void write_file_atomic(const std::string& path, const std::string& text);

// One epoch's checkpoint: files that replace their previous versions in DIR together.
//
//   1. stage(name) gives the path DIR/<name>.next; the caller writes the new file there (through
//      the usual temporary file and rename, so a staged file is always whole).
//   2. commit() fsyncs the staged files and writes the commit record DIR/checkpoint.commit (JSON:
//      the epoch and the names), atomically. From this moment the epoch is saved.
//   3. It renames each <name>.next over <name>, then removes the record.
//
// A process killed before step 2 leaves the previous epoch's files untouched (and some *.next and
// *.tmp.<pid> files, which no reader opens); killed after it, the record says how to finish.
// recover_run_dir, run by the next training in DIR before it reads anything, completes a recorded
// commit (roll forward) or removes the leftovers of an unrecorded one (roll back).
class CheckpointSet {
 public:
  CheckpointSet(std::string dir, int64_t epoch);
  // Not committed: removes the staged files (a failed save leaves nothing behind).
  ~CheckpointSet();
  CheckpointSet(const CheckpointSet&) = delete;
  CheckpointSet& operator=(const CheckpointSet&) = delete;

  // The path to write the new DIR/<name> to.
  std::string stage(const std::string& name);
  // Stages DIR/<name>, a JSON-lines file with an "epoch" in every line: its lines of earlier epochs,
  // then `lines` (this epoch's).
  void stage_jsonl(const std::string& name, const std::vector<std::string>& lines);
  // Stages metrics.jsonl: its lines of earlier epochs, then `json_line`.
  void stage_metrics_line(const std::string& json_line) { stage_jsonl("metrics.jsonl", {json_line}); }
  void commit();

 private:
  std::string dir_;
  int64_t epoch_;
  std::vector<std::string> names_;
  bool committed_ = false;
};

// Writes one epoch's checkpoint: `write` writes the staged files of `set`, then the set is
// committed. A failure before the commit record (a full disk, say) throws one line: what failed,
// and that the previous checkpoint (epoch `saved_epoch`; 0: none) is intact.
void save_checkpoint(CheckpointSet& set, int64_t epoch, int64_t saved_epoch, const std::function<void()>& write);

// What an interrupted save left in DIR, put right: a recorded commit is completed, unrecorded staged
// files and temporary files of dead processes are removed. Prints one line to stderr when it did
// something. Call with DIR locked (RunLock).
void recover_run_dir(const std::string& dir);

}  // namespace ll::app
