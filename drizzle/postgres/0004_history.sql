CREATE TABLE "history_state" (
	"id" integer PRIMARY KEY NOT NULL,
	"watermark" bigint DEFAULT 0 NOT NULL,
	"pruned_before" bigint DEFAULT 0 NOT NULL
);
--> statement-breakpoint
CREATE TABLE "rollups_hour" (
	"sensor_id" bigint NOT NULL,
	"variable" text NOT NULL,
	"bucket" bigint NOT NULL,
	"count" bigint NOT NULL,
	"sum" double precision NOT NULL,
	"min" double precision NOT NULL,
	"max" double precision NOT NULL,
	"first" double precision NOT NULL,
	"first_ts" bigint NOT NULL,
	"first_id" bigint NOT NULL,
	"last" double precision NOT NULL,
	"last_ts" bigint NOT NULL,
	"last_id" bigint NOT NULL,
	CONSTRAINT "rollups_hour_sensor_id_variable_bucket_pk" PRIMARY KEY("sensor_id","variable","bucket")
);
--> statement-breakpoint
CREATE TABLE "rollups_minute" (
	"sensor_id" bigint NOT NULL,
	"variable" text NOT NULL,
	"bucket" bigint NOT NULL,
	"count" bigint NOT NULL,
	"sum" double precision NOT NULL,
	"min" double precision NOT NULL,
	"max" double precision NOT NULL,
	"first" double precision NOT NULL,
	"first_ts" bigint NOT NULL,
	"first_id" bigint NOT NULL,
	"last" double precision NOT NULL,
	"last_ts" bigint NOT NULL,
	"last_id" bigint NOT NULL,
	CONSTRAINT "rollups_minute_sensor_id_variable_bucket_pk" PRIMARY KEY("sensor_id","variable","bucket")
);
--> statement-breakpoint
ALTER TABLE "rollups_hour" ADD CONSTRAINT "rollups_hour_sensor_id_sensors_id_fk" FOREIGN KEY ("sensor_id") REFERENCES "public"."sensors"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "rollups_minute" ADD CONSTRAINT "rollups_minute_sensor_id_sensors_id_fk" FOREIGN KEY ("sensor_id") REFERENCES "public"."sensors"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "anomalies_reading_idx" ON "anomalies" USING btree ("reading_id");--> statement-breakpoint
CREATE INDEX "readings_time_idx" ON "readings" USING btree ("timestamp");