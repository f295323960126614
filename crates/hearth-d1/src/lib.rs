//! D1: the D1Database contract, one SQLite file per database, and wrangler-style migrations.
