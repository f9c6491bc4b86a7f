CREATE TABLE `detector_progress` (
	`sensor_id` integer PRIMARY KEY NOT NULL,
	`upto` integer NOT NULL,
	`dirty_since` integer,
	FOREIGN KEY (`sensor_id`) REFERENCES `sensors`(`id`) ON UPDATE no action ON DELETE cascade
);
