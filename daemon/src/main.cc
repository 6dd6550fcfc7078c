#include "control/cli.h"

int main(int argc, char** argv) {
  return ingestd::control::main(argc, argv);
}
