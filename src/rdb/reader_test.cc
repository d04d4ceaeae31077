#include "rdb/rdb.h"

#include <gtest/gtest.h>
