// reader: see rdb/rdb.h.
#include "rdb/rdb.h"
