// placeholder
#include "check.h"
