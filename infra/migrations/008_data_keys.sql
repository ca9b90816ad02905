-- One data key per case (scope = the case id; its survey and carrier claim share it), wrapped
-- with a master key of the codec's key ring. Erasing a case's Temporal payloads (GDPR art.
-- 17) destroys its key: wrapped_key NULL, destroyed_at set; the payloads stay, unreadable.
CREATE TABLE data_keys (
    scope text PRIMARY KEY,
    master_key_id text NOT NULL,
    wrapped_key bytea,
    created_at timestamptz NOT NULL DEFAULT now(),
    destroyed_at timestamptz,
    CONSTRAINT data_keys_destroyed_or_kept CHECK ((wrapped_key IS NULL) = (destroyed_at IS NOT NULL))
);
