-- A reading's created event may leave its frame out (payload '') and name its reading instead, rebuilt from
-- the readings row until a change to that row writes the frame in whole. Rows written before keep theirs.
ALTER TABLE "events" ADD COLUMN "reading_id" bigint;--> statement-breakpoint
CREATE INDEX "events_reading_idx" ON "events" USING btree ("reading_id") WHERE reading_id is not null;