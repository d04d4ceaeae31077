// larder-server [/path/to/larder.conf] [--option value ...]
// Called exactly as redis-server is: an optional config file in redis.conf
// syntax, then options that override it.
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include "common/log.h"
#include "config/config.h"
#include "server/server.h"

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (!args.empty() && (args[0] == "-v" || args[0] == "--version")) {
    printf("Larder server v=0.1.0 (Redis 7.0 compatible) bits=64\n");
    return 0;
  }
  if (!args.empty() && (args[0] == "-h" || args[0] == "--help")) {
    printf(
        "Usage: larder-server [/path/to/larder.conf] [options]\n"
        "       larder-server -v or --version\n\n"
        "Examples:\n"
        "       larder-server (run the server with default config)\n"
        "       larder-server /etc/larder/6379.conf\n"
        "       larder-server --port 7777 --threads 4\n"
        "       larder-server /etc/mylarder.conf --loglevel verbose\n");
    return 0;
  }
  larder::Config config;
  std::string err;
  size_t first_opt = 0;
  if (!args.empty() && args[0].rfind("--", 0) != 0) {
    if (!config.LoadFile(args[0], &err)) {
      fprintf(stderr, "%s\n", err.c_str());
      return 1;
    }
    first_opt = 1;
  }
  std::vector<std::string> opts(args.begin() + static_cast<long>(first_opt), args.end());
  if (!config.ApplyArgs(opts, &err)) {
    fprintf(stderr, "%s\n", err.c_str());
    return 1;
  }
  if (!config.logfile().empty()) larder::SetLogFile(config.logfile());
  if (config.daemonize.load() && daemon(1, 0) != 0) {
    perror("daemon");
    return 1;
  }
  larder::Server server(&config);
  return server.Run();
}
