-- PostgreSQL: how far each sensor's detector states have got (DetectorStates): states kept in memory are
-- written back every second, and the next writer of a sensor checks again the readings they lag behind.
CREATE TABLE "detector_progress" (
	"sensor_id" bigint PRIMARY KEY NOT NULL,
	"upto" bigint NOT NULL,
	"dirty_since" bigint
);
--> statement-breakpoint
ALTER TABLE "detector_progress" ADD CONSTRAINT "detector_progress_sensor_id_sensors_id_fk" FOREIGN KEY ("sensor_id") REFERENCES "public"."sensors"("id") ON DELETE cascade ON UPDATE no action;