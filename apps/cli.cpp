#include <exception>
#include <iostream>

#include "apps/commands.h"
#include "apps/train_control.h"
#include "data/dataset.h"

namespace ll::app {

int run_cli(int argc, const char* const* argv) {
  CLI::App app{"latentlab: latent-variable generative models (autoencoders, VAEs, GANs) and their latent spaces"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "latentlab 0.1.0");
  add_train_command(app);
  add_sample_command(app);
  add_eval_command(app);
  add_interpolate_command(app);
  add_arithmetic_command(app);
  add_traverse_command(app);
  add_latent_map_command(app);
  add_score_command(app);
  add_fid_command(app);
  add_serve_command(app);
  add_debias_report_command(app);
  add_steer_command(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);  // prints the usage or --help; nonzero for real errors
  } catch (const Interrupted& e) {
    // SIGINT/SIGTERM during training: one line saying what was kept, and the shell's status for it.
    std::cerr << "latentlab: " << e.what() << "\n";
    return e.exit_status();
  } catch (const std::exception& e) {
    std::cerr << "latentlab: error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}

}  // namespace ll::app
