-- The gate of a submit, called by the one statement that inserts the submission and its grading job
-- (src/modules/submissions/submission.queries.ts): the submitter's try-lock (one submit of a user to an
-- exercise at a time; a parallel one is refused at once), then what the submit limits count. A VOLATILE
-- plpgsql function takes a new snapshot for each of its queries, so the counts are read after the lock is
-- held and include any submit of this user and exercise that committed before it: the statement's own
-- snapshot, taken before the lock, may not. That is what lets a submit be one round trip instead of a
-- transaction of five, each of whose gaps held a pooled connection while the API process got to it.
CREATE FUNCTION lab_submit_gate(p_user uuid, p_exercise uuid, p_window_s int)
RETURNS TABLE (locked boolean, recent int, retry_after int, attempts int)
LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_column
BEGIN
  IF NOT pg_try_advisory_xact_lock(hashtextextended('submit:' || p_user::text || ':' || p_exercise::text, 0)) THEN
    RETURN QUERY SELECT false, 0, 1, 0;
    RETURN;
  END IF;
  -- The user's submissions to any exercise in the window (the rate limit) and when the oldest of them
  -- leaves it, and the attempts used at this exercise.
  RETURN QUERY
  SELECT true,
         (count(*) FILTER (WHERE s.created_at > now() - make_interval(secs => p_window_s)))::int,
         greatest(1, coalesce(ceil(extract(epoch FROM
           min(s.created_at) FILTER (WHERE s.created_at > now() - make_interval(secs => p_window_s))
           + make_interval(secs => p_window_s) - now())), 1))::int,
         (count(*) FILTER (WHERE s.exercise_id = p_exercise AND s.counts_as_attempt))::int
    FROM submissions s
   WHERE s.user_id = p_user
     AND (s.created_at > now() - make_interval(secs => p_window_s) OR s.exercise_id = p_exercise);
END
$$;
--> statement-breakpoint
-- The same for starting a run (src/modules/runs/run.queries.ts): one run of a user starting at a time
-- (a try-lock), then their runs in the window, counted after the lock.
CREATE FUNCTION lab_run_gate(p_user uuid, p_window_s int)
RETURNS TABLE (locked boolean, recent int, retry_after int)
LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_column
BEGIN
  IF NOT pg_try_advisory_xact_lock(hashtextextended('lab:runs:' || p_user::text, 0)) THEN
    RETURN QUERY SELECT false, 0, 1;
    RETURN;
  END IF;
  RETURN QUERY
  SELECT true, count(*)::int,
         greatest(1, coalesce(ceil(extract(epoch FROM
           min(r.created_at) + make_interval(secs => p_window_s) - now())), 1))::int
    FROM runs r
   WHERE r.user_id = p_user AND r.created_at > now() - make_interval(secs => p_window_s);
END
$$;
