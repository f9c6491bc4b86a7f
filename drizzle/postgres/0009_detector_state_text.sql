-- A detector state (and its season) is JSON that only the server reads, always whole. As json, PostgreSQL
-- checked its syntax on every write, and single POSTs write five states per reading: 80 rows of 2.3 KB
-- upserted 200 times took 0.77-1.07 s as json and 0.51-0.57 s as text (docs: BENCHMARKS.md, issue 16).
ALTER TABLE "detector_state" ALTER COLUMN "state" SET DATA TYPE text;--> statement-breakpoint
ALTER TABLE "detector_state" ALTER COLUMN "season" SET DATA TYPE text;