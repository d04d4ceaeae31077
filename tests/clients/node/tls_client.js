// ioredis over TLS against a running server: node tls_client.js PORT CA [CERT KEY]
// Prints one JSON line with what it saw; exits non-zero on any failure.
// Run by tests/integration/test_tls.py (npm install here first).
const fs = require("fs");
const Redis = require("ioredis");

async function main() {
  const [port, ca, cert, key] = process.argv.slice(2);
  const tls = { ca: fs.readFileSync(ca), servername: "localhost" };
  if (cert) {
    tls.cert = fs.readFileSync(cert);
    tls.key = fs.readFileSync(key);
  }
  const r = new Redis({ host: "127.0.0.1", port: Number(port), tls, maxRetriesPerRequest: 0,
                        retryStrategy: () => null, lazyConnect: true });
  await r.connect();
  const out = {};
  out.ping = await r.ping();
  await r.set("node:k", "v1");
  out.get = await r.get("node:k");
  // A pipeline of many commands, and a value larger than one TLS record.
  const p = r.pipeline();
  for (let i = 0; i < 1000; i++) p.set(`node:p${i}`, String(i));
  await p.exec();
  out.mget = await r.mget("node:p0", "node:p999");
  const big = "x".repeat(3 * 1024 * 1024);
  await r.set("node:big", big);
  out.big = (await r.get("node:big")).length;
  out.tlsVersion = r.stream.getProtocol ? r.stream.getProtocol() : null;
  console.log(JSON.stringify(out));
  r.disconnect();
}

main().catch((e) => {
  console.error(String(e && e.stack ? e.stack : e));
  process.exit(1);
});
