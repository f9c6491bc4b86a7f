-- Readings carry any measurements in one JSON column; the original's two columns are carried over
-- into it (full precision: SQLite writes JSON numbers that read back as the same double), then dropped.
-- The last-value store and the variables registry start from the data already stored. The store is a
-- WITHOUT ROWID table: GET /latest reads it whole in key order, half the time of a rowid table's index walk.
CREATE TABLE `latest_values` (
	`sensor_id` integer NOT NULL,
	`variable` text NOT NULL,
	`value` real NOT NULL,
	`timestamp` integer NOT NULL,
	`reading_id` integer NOT NULL,
	PRIMARY KEY(`sensor_id`, `variable`),
	FOREIGN KEY (`sensor_id`) REFERENCES `sensors`(`id`) ON UPDATE no action ON DELETE cascade
) WITHOUT ROWID;
--> statement-breakpoint
CREATE TABLE `variables` (
	`name` text PRIMARY KEY NOT NULL,
	`unit` text,
	`description` text,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL
);
--> statement-breakpoint
INSERT INTO `variables` (`name`, `unit`, `description`, `created_at`, `updated_at`) VALUES
	('temperatura', '°C', 'Temperatura', CAST(strftime('%s', 'now') AS integer) * 1000, CAST(strftime('%s', 'now') AS integer) * 1000),
	('humedad', '%', 'Humedad relativa', CAST(strftime('%s', 'now') AS integer) * 1000, CAST(strftime('%s', 'now') AS integer) * 1000);
--> statement-breakpoint
ALTER TABLE `readings` ADD `values` text DEFAULT '{}' NOT NULL;--> statement-breakpoint
UPDATE `readings` SET `values` = CASE
	WHEN `temperatura` IS NOT NULL AND `humedad` IS NOT NULL THEN json_object('temperatura', `temperatura`, 'humedad', `humedad`)
	WHEN `temperatura` IS NOT NULL THEN json_object('temperatura', `temperatura`)
	WHEN `humedad` IS NOT NULL THEN json_object('humedad', `humedad`)
	ELSE '{}'
END;--> statement-breakpoint
INSERT INTO `latest_values` (`sensor_id`, `variable`, `value`, `timestamp`, `reading_id`)
SELECT `sensor_id`, 'temperatura', `temperatura`, `timestamp`, `id` FROM (
	SELECT `id`, `sensor_id`, `temperatura`, `timestamp`,
		row_number() OVER (PARTITION BY `sensor_id` ORDER BY `timestamp` DESC, `id` DESC) AS `rank`
	FROM `readings` WHERE `temperatura` IS NOT NULL
) WHERE `rank` = 1;--> statement-breakpoint
INSERT INTO `latest_values` (`sensor_id`, `variable`, `value`, `timestamp`, `reading_id`)
SELECT `sensor_id`, 'humedad', `humedad`, `timestamp`, `id` FROM (
	SELECT `id`, `sensor_id`, `humedad`, `timestamp`,
		row_number() OVER (PARTITION BY `sensor_id` ORDER BY `timestamp` DESC, `id` DESC) AS `rank`
	FROM `readings` WHERE `humedad` IS NOT NULL
) WHERE `rank` = 1;--> statement-breakpoint
ALTER TABLE `readings` DROP COLUMN `temperatura`;--> statement-breakpoint
ALTER TABLE `readings` DROP COLUMN `humedad`;
