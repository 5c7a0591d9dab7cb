-- The ids of the events a NOTIFY batch announced, as rows (src/realtime/events.queries.ts). The planner
-- counts ten elements in an array parameter and one for each element of an array it is given, so for
-- `e.id = any($1)` every plan made with the values (a row or two, each with its staff and visible-test
-- subqueries) looked far cheaper than the generic one and Postgres planned the events fan-out afresh on
-- every call: 0.18 ms of planning against 0.10 ms of execution, 4,259 calls in a classroom step of 2,500
-- (pg_stat_statements with track_planning). A plpgsql function is not inlined and declares its rows, so
-- both plans count one and the generic plan is kept after the fifth call.
CREATE FUNCTION lab_event_ids(p_ids bigint[]) RETURNS SETOF bigint
LANGUAGE plpgsql IMMUTABLE STRICT ROWS 1 AS $$
BEGIN
  RETURN QUERY SELECT unnest(p_ids);
END
$$;
