ALTER TABLE "latest_values" ADD COLUMN "entry" text DEFAULT '' NOT NULL;--> statement-breakpoint
-- Existing entries get their JSON text here (a double's text reads back exactly; the timestamp as
-- toISOString writes it).
UPDATE "latest_values" SET "entry" = to_json("variable")::text || ':{"value":' || "value"::text || ',"timestamp":"' || to_char(to_timestamp("timestamp" / 1000.0) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') || '"}';
