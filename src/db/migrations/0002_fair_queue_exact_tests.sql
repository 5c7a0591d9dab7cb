CREATE TABLE "rate_limits" (
	"key" varchar(255) PRIMARY KEY NOT NULL,
	"points" integer DEFAULT 0 NOT NULL,
	"expire" bigint
);
--> statement-breakpoint
DROP INDEX "grading_jobs_run_at_idx";--> statement-breakpoint
ALTER TABLE "grading_jobs" ADD COLUMN "user_id" uuid;--> statement-breakpoint
UPDATE "grading_jobs" j SET "user_id" = s."user_id" FROM "submissions" s WHERE s."id" = j."submission_id";--> statement-breakpoint
ALTER TABLE "grading_jobs" ALTER COLUMN "user_id" SET NOT NULL;--> statement-breakpoint
ALTER TABLE "grading_jobs" ADD COLUMN "priority" smallint DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "grading_jobs" ADD CONSTRAINT "grading_jobs_user_id_users_id_fk" FOREIGN KEY ("user_id") REFERENCES "public"."users"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "grading_jobs_priority_run_at_idx" ON "grading_jobs" USING btree ("priority","run_at","id");--> statement-breakpoint
CREATE INDEX "grading_jobs_user_idx" ON "grading_jobs" USING btree ("user_id");--> statement-breakpoint
CREATE INDEX "submissions_user_created_idx" ON "submissions" USING btree ("user_id","created_at");--> statement-breakpoint
-- Tests keep a call test's arguments and expected value as JSON text (src/lib/json-text.ts), and
-- every test has points (v1.1; default 1) and call tests a tolerance (default 0). What jsonb already
-- reordered cannot be recovered; its canonical text is what these tests meant until now.
UPDATE "exercises" e SET "tests" = (
  SELECT jsonb_agg(
           CASE WHEN t->>'kind' = 'call'
                THEN (t - 'args' - 'expected')
                     || jsonb_build_object('argsJson', (t->'args')::text, 'expectedJson', (t->'expected')::text,
                                           'points', coalesce(t->'points', '1'::jsonb),
                                           'tolerance', coalesce(t->'tolerance', '0'::jsonb))
                ELSE t || jsonb_build_object('points', coalesce(t->'points', '1'::jsonb))
           END ORDER BY ord)
    FROM jsonb_array_elements(e."tests") WITH ORDINALITY AS x(t, ord)
) WHERE jsonb_typeof(e."tests") = 'array' AND jsonb_array_length(e."tests") > 0;--> statement-breakpoint
-- Results gain `output` (v1.1: null where nothing was captured) and `points` (1 before v1.1).
UPDATE "submissions" s SET "results" = (
  SELECT jsonb_agg(r || jsonb_build_object('output', coalesce(r->'output', 'null'::jsonb),
                                           'points', coalesce(r->'points', '1'::jsonb)) ORDER BY ord)
    FROM jsonb_array_elements(s."results") WITH ORDINALITY AS x(r, ord)
) WHERE jsonb_array_length(s."results") > 0;