-- Liveness: a sensor that has readings starts online, last seen when its newest reading was stored;
-- one without is unknown. A silent one goes offline at the first sweep once a limit is set.
CREATE TABLE `sensor_types` (
	`tipo` text PRIMARY KEY NOT NULL,
	`offline_after` integer NOT NULL,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL
);
--> statement-breakpoint
ALTER TABLE `sensors` ADD `status` text DEFAULT 'unknown' NOT NULL;--> statement-breakpoint
ALTER TABLE `sensors` ADD `last_seen` integer;--> statement-breakpoint
ALTER TABLE `sensors` ADD `offline_after` integer;--> statement-breakpoint
UPDATE `sensors` SET `status` = 'online', `last_seen` = (
	SELECT max(`created_at`) FROM `readings` WHERE `readings`.`sensor_id` = `sensors`.`id`
) WHERE EXISTS (SELECT 1 FROM `readings` WHERE `readings`.`sensor_id` = `sensors`.`id`);--> statement-breakpoint
CREATE INDEX `sensors_status_idx` ON `sensors` (`status`);