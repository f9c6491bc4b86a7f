-- Liveness: a sensor that has readings starts online, last seen when its newest reading was stored;
-- one without is unknown. A silent one goes offline at the first sweep once a limit is set.
CREATE TABLE "sensor_types" (
	"tipo" text PRIMARY KEY NOT NULL,
	"offline_after" integer NOT NULL,
	"created_at" bigint NOT NULL,
	"updated_at" bigint NOT NULL
);
--> statement-breakpoint
ALTER TABLE "sensors" ADD COLUMN "status" text DEFAULT 'unknown' NOT NULL;--> statement-breakpoint
ALTER TABLE "sensors" ADD COLUMN "last_seen" bigint;--> statement-breakpoint
ALTER TABLE "sensors" ADD COLUMN "offline_after" integer;--> statement-breakpoint
UPDATE "sensors" SET "status" = 'online', "last_seen" = "seen"."at"
FROM (SELECT "sensor_id", max("created_at") AS "at" FROM "readings" GROUP BY "sensor_id") AS "seen"
WHERE "seen"."sensor_id" = "sensors"."id";--> statement-breakpoint
CREATE INDEX "sensors_status_idx" ON "sensors" USING btree ("status");