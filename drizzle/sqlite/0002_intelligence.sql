CREATE TABLE `detector_state` (
	`sensor_id` integer NOT NULL,
	`variable` text NOT NULL,
	`rev` text NOT NULL,
	`state` text NOT NULL,
	`updated_at` integer NOT NULL,
	PRIMARY KEY(`sensor_id`, `variable`),
	FOREIGN KEY (`sensor_id`) REFERENCES `sensors`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE TABLE `sensor_type_thresholds` (
	`tipo` text PRIMARY KEY NOT NULL,
	`thresholds` text NOT NULL,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL
);
--> statement-breakpoint
ALTER TABLE `anomalies` ADD `kind` text;--> statement-breakpoint
ALTER TABLE `anomalies` ADD `acknowledged_at` integer;--> statement-breakpoint
ALTER TABLE `sensors` ADD `thresholds` text;