// commands.h: the subcommands of the latentlab program, one file each (apps/cmd_<name>.cpp).
#pragma once
#include <CLI/CLI.hpp>

namespace ll::app {

void add_train_command(CLI::App& app);
void add_sample_command(CLI::App& app);
void add_eval_command(CLI::App& app);
void add_interpolate_command(CLI::App& app);
void add_arithmetic_command(CLI::App& app);
void add_traverse_command(CLI::App& app);
void add_latent_map_command(CLI::App& app);
void add_score_command(CLI::App& app);
void add_fid_command(CLI::App& app);
void add_serve_command(CLI::App& app);
void add_debias_report_command(CLI::App& app);
void add_steer_command(CLI::App& app);

// Parses the command line and runs the chosen subcommand. Returns the exit status: 0, or nonzero
// after printing one line saying what is wrong (or the usage, for wrong flags).
int run_cli(int argc, const char* const* argv);

}  // namespace ll::app
