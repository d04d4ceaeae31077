// Cache-aside with stampede protection, using Larder's CACHE FETCH from
// Node.js (ioredis). However many processes ask for the same missing key at
// once, exactly one computes it; the others wait for its value.
//
//   npm install ioredis && node examples/cache-aside/fetch.js
const Redis = require("ioredis");

const redis = new Redis(); // localhost:6379

async function cached(key, compute, { ttl = 300, leaseMs = 5000, earlyMs = 10000 } = {}) {
  for (;;) {
    const reply = await redis.call("CACHE", "FETCH", key, leaseMs, "EARLY", earlyMs);
    if (reply === null) continue; // the computing caller was too slow or died: ask again
    const [status, value] = reply;
    if (status === "hit") return value;
    // "compute": ours to compute and store; "refresh": the key expires within
    // earlyMs and we were picked to recompute it ahead of time.
    const fresh = await compute();
    await redis.set(key, fresh, "EX", ttl);
    return fresh;
  }
}

async function slowReport() {
  await new Promise((resolve) => setTimeout(resolve, 500)); // a slow query, an API call...
  return "report body";
}

cached("report:2026-11", slowReport).then((v) => {
  console.log(v);
  redis.disconnect();
});
