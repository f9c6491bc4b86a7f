-- The last-value store becomes one row per sensor (a single POST wrote five rows a reading): each
-- variable's newest value as JSON by name, and the sensor's GET /latest entries as one text, in name
-- order (byte order, as the server writes them). The stored rows are carried over.
CREATE TABLE "latest_values_new" AS
SELECT "sensor_id",
	json_object_agg("variable", json_build_array("value", "timestamp", "reading_id") ORDER BY "variable" COLLATE "C")::text AS "newest",
	string_agg("entry", ',' ORDER BY "variable" COLLATE "C") AS "entries"
FROM "latest_values"
GROUP BY "sensor_id";
--> statement-breakpoint
DROP TABLE "latest_values" CASCADE;
--> statement-breakpoint
CREATE TABLE "latest_values" (
	"sensor_id" bigint PRIMARY KEY NOT NULL,
	"newest" text NOT NULL,
	"entries" text NOT NULL
);
--> statement-breakpoint
INSERT INTO "latest_values" ("sensor_id", "newest", "entries") SELECT "sensor_id", "newest", "entries" FROM "latest_values_new";
--> statement-breakpoint
DROP TABLE "latest_values_new";
--> statement-breakpoint
ALTER TABLE "latest_values" ADD CONSTRAINT "latest_values_sensor_id_sensors_id_fk" FOREIGN KEY ("sensor_id") REFERENCES "public"."sensors"("id") ON DELETE cascade ON UPDATE no action;
