// Only the header matters: this target declares libFuzzer's driver for Swift.
#include "CLibFuzzer.h"
