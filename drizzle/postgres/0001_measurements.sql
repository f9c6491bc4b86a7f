-- Readings carry any measurements in one jsonb column; the original's two columns are carried over into
-- it (PostgreSQL prints doubles as the shortest text that reads back as the same value), then dropped.
-- The last-value store and the variables registry start from the data already stored.
CREATE TABLE "latest_values" (
	"sensor_id" bigint NOT NULL,
	"variable" text NOT NULL,
	"value" double precision NOT NULL,
	"timestamp" bigint NOT NULL,
	"reading_id" bigint NOT NULL,
	CONSTRAINT "latest_values_sensor_id_variable_pk" PRIMARY KEY("sensor_id","variable")
);
--> statement-breakpoint
CREATE TABLE "variables" (
	"name" text PRIMARY KEY NOT NULL,
	"unit" text,
	"description" text,
	"created_at" bigint NOT NULL,
	"updated_at" bigint NOT NULL
);
--> statement-breakpoint
INSERT INTO "variables" ("name", "unit", "description", "created_at", "updated_at") VALUES
	('temperatura', '°C', 'Temperatura', (extract(epoch from now()) * 1000)::bigint, (extract(epoch from now()) * 1000)::bigint),
	('humedad', '%', 'Humedad relativa', (extract(epoch from now()) * 1000)::bigint, (extract(epoch from now()) * 1000)::bigint);
--> statement-breakpoint
ALTER TABLE "readings" ADD COLUMN "values" jsonb DEFAULT '{}'::jsonb NOT NULL;--> statement-breakpoint
UPDATE "readings" SET "values" = jsonb_strip_nulls(jsonb_build_object('temperatura', "temperatura", 'humedad', "humedad"));--> statement-breakpoint
ALTER TABLE "latest_values" ADD CONSTRAINT "latest_values_sensor_id_sensors_id_fk" FOREIGN KEY ("sensor_id") REFERENCES "public"."sensors"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
INSERT INTO "latest_values" ("sensor_id", "variable", "value", "timestamp", "reading_id")
SELECT DISTINCT ON ("sensor_id") "sensor_id", 'temperatura', "temperatura", "timestamp", "id"
FROM "readings" WHERE "temperatura" IS NOT NULL
ORDER BY "sensor_id", "timestamp" DESC, "id" DESC;--> statement-breakpoint
INSERT INTO "latest_values" ("sensor_id", "variable", "value", "timestamp", "reading_id")
SELECT DISTINCT ON ("sensor_id") "sensor_id", 'humedad', "humedad", "timestamp", "id"
FROM "readings" WHERE "humedad" IS NOT NULL
ORDER BY "sensor_id", "timestamp" DESC, "id" DESC;--> statement-breakpoint
ALTER TABLE "readings" DROP COLUMN "temperatura";--> statement-breakpoint
ALTER TABLE "readings" DROP COLUMN "humedad";
