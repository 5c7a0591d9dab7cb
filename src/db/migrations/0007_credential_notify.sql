-- A session or token that stops authenticating, by whatever path (logout, token deletion, a user deleted,
-- an expiry or hash changed by hand in SQL), is NOTIFYed on lab_credentials with its id in the same
-- transaction: every API instance drops its cached caller (src/http/caller-cache.ts) and ends the event
-- streams opened with it. Sessions already expired (housekeeping's pruning) are not announced.
CREATE FUNCTION lab_credential_revoked() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('lab_credentials', OLD.id::text);
  RETURN NULL;
END
$$;
--> statement-breakpoint
CREATE TRIGGER sessions_revoked AFTER DELETE OR UPDATE OF token_hash, user_id, expires_at ON sessions
  FOR EACH ROW WHEN (OLD.expires_at > now()) EXECUTE FUNCTION lab_credential_revoked();
--> statement-breakpoint
CREATE TRIGGER api_tokens_revoked AFTER DELETE OR UPDATE OF token_hash, user_id ON api_tokens
  FOR EACH ROW EXECUTE FUNCTION lab_credential_revoked();
