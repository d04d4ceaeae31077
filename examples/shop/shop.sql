-- The demo database behind Larder's default configuration: a small shop.
-- Build it with:  sqlite3 examples/shop/shop.db < examples/shop/shop.sql
-- (scripts/run.sh does this when the file is missing).
DROP TABLE IF EXISTS orders;
DROP TABLE IF EXISTS products;
DROP TABLE IF EXISTS users;

CREATE TABLE users (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL,
  email TEXT NOT NULL,
  plan TEXT NOT NULL,
  referrer TEXT          -- often NULL: left out of the cached hash
);

CREATE TABLE products (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL,
  price_cents INTEGER NOT NULL,
  stock INTEGER NOT NULL
);

CREATE TABLE orders (
  id INTEGER PRIMARY KEY,
  user_id INTEGER NOT NULL REFERENCES users(id),
  product_id INTEGER NOT NULL REFERENCES products(id),
  quantity INTEGER NOT NULL,
  created_at TEXT NOT NULL
);

WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000)
INSERT INTO users (id, name, email, plan, referrer)
SELECT i,
       'user ' || i,
       'user' || i || '@example.com',
       CASE i % 3 WHEN 0 THEN 'pro' WHEN 1 THEN 'free' ELSE 'team' END,
       CASE WHEN i % 4 = 0 THEN 'user' || (i / 4) END
FROM n;

WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 200)
INSERT INTO products (id, name, price_cents, stock)
SELECT i, 'product ' || i, 100 + (i * 37) % 9900, (i * 13) % 50 FROM n;

WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5000)
INSERT INTO orders (id, user_id, product_id, quantity, created_at)
SELECT i, 1 + (i * 7) % 1000, 1 + (i * 11) % 200, 1 + i % 4,
       datetime('2026-01-01', '+' || (i % 300) || ' days')
FROM n;
