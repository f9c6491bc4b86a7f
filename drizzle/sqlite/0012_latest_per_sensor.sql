-- The last-value store becomes one row per sensor (a single POST wrote five rows a reading): each
-- variable's newest value as JSON by name, and the sensor's GET /latest entries as one text, in name
-- order. The stored rows are carried over (json_array writes numbers that read back as the same double).
CREATE TABLE `__new_latest_values` (
	`sensor_id` integer PRIMARY KEY NOT NULL,
	`newest` text NOT NULL,
	`entries` text NOT NULL,
	FOREIGN KEY (`sensor_id`) REFERENCES `sensors`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
INSERT INTO `__new_latest_values` (`sensor_id`, `newest`, `entries`)
SELECT `sensor_id`, json_group_object(`variable`, json_array(`value`, `timestamp`, `reading_id`)), group_concat(`entry`, ',')
FROM (SELECT * FROM `latest_values` ORDER BY `sensor_id`, `variable`)
GROUP BY `sensor_id`;
--> statement-breakpoint
DROP TABLE `latest_values`;
--> statement-breakpoint
ALTER TABLE `__new_latest_values` RENAME TO `latest_values`;
