-- Invalidation from PostgreSQL: a trigger that tells Larder which cached key
-- a change makes stale. Larder LISTENs on the channel 'larder_invalidate'
-- (config: cache-invalidation-channel) on every PostgreSQL source and drops
-- the key named by each notification; the next read loads it again.
--
-- Changes made by Larder itself (write-through) are skipped: Larder's
-- connections set application_name to 'larder', so its own writes do not
-- come back as needless reloads.
--
-- Usage: one trigger per table and key family, naming the key's prefix and
-- the column that completes it:
--   CREATE TRIGGER users_larder AFTER INSERT OR UPDATE OR DELETE ON users
--     FOR EACH ROW EXECUTE FUNCTION larder_notify('user:', 'id');

CREATE OR REPLACE FUNCTION larder_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  prefix text := TG_ARGV[0];
  keycol text := TG_ARGV[1];
  new_id text;
  old_id text;
BEGIN
  IF current_setting('application_name', true) = 'larder' THEN
    RETURN NULL;
  END IF;
  IF TG_OP <> 'DELETE' THEN
    new_id := to_jsonb(NEW) ->> keycol;
    PERFORM pg_notify('larder_invalidate', prefix || new_id);
  END IF;
  IF TG_OP <> 'INSERT' THEN
    old_id := to_jsonb(OLD) ->> keycol;
    IF old_id IS DISTINCT FROM new_id THEN
      PERFORM pg_notify('larder_invalidate', prefix || old_id);
    END IF;
  END IF;
  RETURN NULL;
END $$;
