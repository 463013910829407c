"""Data contracts: event records, SQL tables and migrations, ClickHouse DDL, plugin.json schema."""
