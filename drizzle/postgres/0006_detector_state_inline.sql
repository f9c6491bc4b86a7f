-- A detector state is 1-2.5 KB of JSON, rewritten by every transaction that brings its sensor a reading.
-- Past about 2 KB a row was compressed (pglz) on every write; kept inline and uncompressed up to a
-- page, and with room on each page for the new version (a HOT update leaves the key index alone),
-- 160 mature states upsert in 5.3 ms instead of 11.8 (docs: BENCHMARKS.md, issue 16).
ALTER TABLE "detector_state" SET (toast_tuple_target = 8160, fillfactor = 50);
