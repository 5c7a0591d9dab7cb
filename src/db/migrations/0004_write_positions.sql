-- Read-your-writes with read replicas (src/db/replicas.ts): after a user's write commits, the primary's WAL
-- insert position is kept here, per user; that user's replica reads wait for a replica that has replayed
-- it, else go to the primary. Read with the caller lookup on the primary, so every API instance sees it.
-- Written by hand (not in the Drizzle schema): only raw SQL touches it.
CREATE TABLE "write_positions" (
	"user_id" uuid PRIMARY KEY NOT NULL,
	"lsn" pg_lsn NOT NULL,
	"at" timestamp with time zone DEFAULT now() NOT NULL
);
