-- A user's jobs beyond the first one claimed go back to the queue (the fair claim would not have
-- claimed them; their generation bump on the next claim voids a result still being computed).
UPDATE "grading_jobs" SET "locked_until" = NULL, "locker_pid" = NULL WHERE "id" IN (
  SELECT "id" FROM (
    SELECT "id", row_number() OVER (PARTITION BY "user_id" ORDER BY "locked_until" DESC, "id") AS "n"
      FROM "grading_jobs" WHERE "locked_until" IS NOT NULL
  ) AS ranked WHERE "n" > 1
);--> statement-breakpoint
CREATE UNIQUE INDEX "grading_jobs_one_running_per_user" ON "grading_jobs" USING btree ("user_id") WHERE "grading_jobs"."locked_until" is not null;
