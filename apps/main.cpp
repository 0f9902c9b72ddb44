// main.cpp: the latentlab program. Everything lives in the subcommands (apps/cmd_*.cpp).
#include "apps/commands.h"

int main(int argc, char** argv) { return ll::app::run_cli(argc, argv); }
