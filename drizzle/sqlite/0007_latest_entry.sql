ALTER TABLE `latest_values` ADD `entry` text DEFAULT '' NOT NULL;--> statement-breakpoint
-- Existing entries get their JSON text here (json_quote writes a double that reads back exactly; the
-- timestamp as toISOString writes it).
UPDATE `latest_values` SET `entry` = json_quote(`variable`) || ':{"value":' || json_quote(`value`) || ',"timestamp":"' || strftime('%Y-%m-%dT%H:%M:%fZ', `timestamp` / 1000.0, 'unixepoch') || '"}';
