// crc64: see rdb/rdb.h.
#include "rdb/rdb.h"
