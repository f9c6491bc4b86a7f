CREATE TABLE `history_state` (
	`id` integer PRIMARY KEY NOT NULL,
	`watermark` integer DEFAULT 0 NOT NULL,
	`pruned_before` integer DEFAULT 0 NOT NULL
);
--> statement-breakpoint
CREATE TABLE `rollups_hour` (
	`sensor_id` integer NOT NULL,
	`variable` text NOT NULL,
	`bucket` integer NOT NULL,
	`count` integer NOT NULL,
	`sum` real NOT NULL,
	`min` real NOT NULL,
	`max` real NOT NULL,
	`first` real NOT NULL,
	`first_ts` integer NOT NULL,
	`first_id` integer NOT NULL,
	`last` real NOT NULL,
	`last_ts` integer NOT NULL,
	`last_id` integer NOT NULL,
	PRIMARY KEY(`sensor_id`, `variable`, `bucket`),
	FOREIGN KEY (`sensor_id`) REFERENCES `sensors`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE TABLE `rollups_minute` (
	`sensor_id` integer NOT NULL,
	`variable` text NOT NULL,
	`bucket` integer NOT NULL,
	`count` integer NOT NULL,
	`sum` real NOT NULL,
	`min` real NOT NULL,
	`max` real NOT NULL,
	`first` real NOT NULL,
	`first_ts` integer NOT NULL,
	`first_id` integer NOT NULL,
	`last` real NOT NULL,
	`last_ts` integer NOT NULL,
	`last_id` integer NOT NULL,
	PRIMARY KEY(`sensor_id`, `variable`, `bucket`),
	FOREIGN KEY (`sensor_id`) REFERENCES `sensors`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE INDEX `anomalies_reading_idx` ON `anomalies` (`reading_id`);--> statement-breakpoint
CREATE INDEX `readings_time_idx` ON `readings` (`timestamp`);