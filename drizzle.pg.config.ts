// drizzle-kit for PostgreSQL: generates the committed migrations from src/db/pg-schema.ts.
import { defineConfig } from 'drizzle-kit'

export default defineConfig({
  dialect: 'postgresql',
  schema: './src/db/pg-schema.ts',
  out: './drizzle/postgres',
})
