"""SQL tables (SQLAlchemy Core), shared by Postgres in cluster mode and SQLite in embedded mode.

Postgres is the system of record for teams, plugins, plugin configs, plugin storage and
attachments, plugin logs, persons and their distinct ids. The `events` table is the
Postgres pipeline's event store (ClickHouse holds events in production); its unique uuid
makes a re-delivered event a no-op.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# SQLite only auto-increments an INTEGER PRIMARY KEY; Postgres gets a real bigint.
Id = BigInteger().with_variant(Integer(), "sqlite")
Json = JSON().with_variant(JSONB(), "postgresql")


def _now() -> Column[object]:
    return Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now())


teams = Table(
    "teams",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False, server_default=""),
    Column("api_token", String(200), nullable=True, unique=True),
    Column("anonymize_ips", Boolean, nullable=False, server_default="0"),
    Column("ingested_event", Boolean, nullable=False, server_default="0"),
    _now(),
)

plugins = Table(
    "plugins",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False),
    Column("description", Text, nullable=False, server_default=""),
    Column("url", Text, nullable=False, server_default=""),
    # plugin.json as the author wrote it; validated when the plugin is installed
    Column("plugin_json", Json, nullable=False),
    # the plugin's files, path -> text (what a folder, zip or tar.gz held)
    Column("source", Json, nullable=False),
    # detected at load: which of the plugin functions exist
    Column("capabilities", Json, nullable=False, server_default="[]"),
    _now(),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

plugin_configs = Table(
    "plugin_configs",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("team_id", Id, ForeignKey("teams.id", ondelete="CASCADE"), nullable=False),
    Column("plugin_id", Id, ForeignKey("plugins.id", ondelete="CASCADE"), nullable=False),
    Column("enabled", Boolean, nullable=False, server_default="1"),
    Column("order", Integer, nullable=False, server_default="0"),
    Column("config", Json, nullable=False, server_default="{}"),
    # the last error of setup or a call: {"message", "name", "time", "event"?}
    Column("error", Json, nullable=True),
    # the budget's state when not healthy: {"state", "reason", "since", "until"?}
    Column("budget", Json, nullable=True),
    _now(),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("ix_plugin_configs_team", "team_id", "enabled"),
)

plugin_attachments = Table(
    "plugin_attachments",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column(
        "plugin_config_id",
        Id,
        ForeignKey("plugin_configs.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("team_id", Id, nullable=False),
    Column("key", String(200), nullable=False),
    Column("content_type", String(200), nullable=False),
    Column("file_name", String(200), nullable=False),
    Column("contents", LargeBinary, nullable=False),
    UniqueConstraint("plugin_config_id", "key"),
)

plugin_storage = Table(
    "plugin_storage",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("plugin_config_id", Id, nullable=False),
    Column("key", String(400), nullable=False),
    # JSON text, so values round-trip exactly as the plugin stored them
    Column("value", Text, nullable=False),
    UniqueConstraint("plugin_config_id", "key"),
)

plugin_logs = Table(
    "plugin_logs",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("team_id", Id, nullable=False),
    Column("plugin_id", Id, nullable=False),
    Column("plugin_config_id", Id, nullable=False),
    Column("timestamp", DateTime(timezone=True), nullable=False),
    # CONSOLE (meta.logger), PLUGIN (an error a plugin raised) or SYSTEM (the runtime)
    Column("source", String(20), nullable=False),
    Column("level", String(20), nullable=False),
    Column("message", Text, nullable=False),
    Column("instance_id", String(64), nullable=False, server_default=""),
    Index("ix_plugin_logs_config_time", "plugin_config_id", "timestamp"),
)

plugin_jobs = Table(
    "plugin_jobs",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("team_id", Id, nullable=False),
    Column("plugin_config_id", Id, nullable=False),
    # the job's name in the plugin's `jobs`, or exportEventsWithRetry for an export retry
    Column("name", String(200), nullable=False),
    # JSON text: the payload as the plugin gave it (an export retry: the batch)
    Column("payload", Text, nullable=False),
    Column("run_at", DateTime(timezone=True), nullable=False),
    # scheduled -> running (claimed by one worker until locked_until) -> deleted when it
    # succeeds, scheduled again after a RetryError, failed when it cannot succeed
    Column("state", String(20), nullable=False, server_default="scheduled"),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("claim", String(36), nullable=True),
    Column("locked_until", DateTime(timezone=True), nullable=True),
    Column("error", Text, nullable=True),
    _now(),
    Index("ix_plugin_jobs_due", "state", "run_at"),
    Index("ix_plugin_jobs_config", "plugin_config_id"),
)

# the plugins' own meta.metrics, per config: every worker adds what its calls counted
# (sum) or folds in what they saw (max, min), so the value is the cluster's
plugin_metrics = Table(
    "plugin_metrics",
    metadata,
    Column("plugin_config_id", Id, primary_key=True),
    Column("name", String(200), primary_key=True),
    Column("kind", String(10), nullable=False),  # sum, max or min
    Column("value", Float, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

persons = Table(
    "persons",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("uuid", String(36), nullable=False, unique=True),
    Column("team_id", Id, nullable=False),
    Column("properties", Json, nullable=False, server_default="{}"),
    Column("properties_last_updated_at", Json, nullable=False, server_default="{}"),
    Column("is_identified", Boolean, nullable=False, server_default="0"),
    Column("version", BigInteger, nullable=False, server_default="0"),
    _now(),
    Index("ix_persons_team", "team_id"),
)

person_distinct_ids = Table(
    "person_distinct_ids",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("team_id", Id, nullable=False),
    Column("distinct_id", String(400), nullable=False),
    Column("person_id", Id, ForeignKey("persons.id", ondelete="CASCADE"), nullable=False),
    UniqueConstraint("team_id", "distinct_id"),
)

events = Table(
    "events",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("uuid", String(36), nullable=False, unique=True),
    Column("team_id", Id, nullable=False),
    Column("event", String(400), nullable=False),
    Column("distinct_id", String(400), nullable=False),
    Column("person_uuid", String(36), nullable=True),
    Column("properties", Json, nullable=False),
    Column("elements_chain", Text, nullable=False, server_default=""),
    # the event's element group (`element_groups.hash`), as the original's events.elements_hash
    Column("elements_hash", String(32), nullable=True),
    Column("timestamp", DateTime(timezone=True), nullable=False),
    _now(),
    Index("ix_events_team_time", "team_id", "timestamp"),
)


# Autocapture elements of the Postgres pipeline: one group per distinct list of elements
# per team (keyed by the original's hash), its elements stored once, when first seen
element_groups = Table(
    "element_groups",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("team_id", Id, nullable=False),
    Column("hash", String(32), nullable=False),
    UniqueConstraint("team_id", "hash"),
)

elements = Table(
    "elements",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("group_id", Id, ForeignKey("element_groups.id", ondelete="CASCADE"), nullable=False),
    Column("text", Text, nullable=True),
    Column("tag_name", Text, nullable=True),
    Column("href", Text, nullable=True),
    Column("attr_id", Text, nullable=True),
    Column("attr_class", Json, nullable=True),
    Column("nth_child", Integer, nullable=True),
    Column("nth_of_type", Integer, nullable=True),
    Column("attributes", Json, nullable=False, server_default="{}"),
    Column("order", Integer, nullable=True),
    Index("ix_elements_group", "group_id"),
)


# `$snapshot` events of the Postgres pipeline: session recordings, never event rows
session_recording_events = Table(
    "session_recording_events",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("uuid", String(36), nullable=False, unique=True),
    Column("team_id", Id, nullable=False),
    Column("distinct_id", String(400), nullable=False),
    Column("session_id", Text, nullable=False),
    Column("window_id", Text, nullable=True),
    Column("snapshot_data", Json, nullable=False),
    Column("timestamp", DateTime(timezone=True), nullable=False),
    _now(),
    Index("ix_session_recording_events_session", "team_id", "session_id", "timestamp"),
)


# which event names and top-level property keys each team has sent (spec 5.2)
event_definitions = Table(
    "event_definitions",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("team_id", Id, nullable=False),
    Column("name", String(400), nullable=False),
    Column("volume_30_day", Integer, nullable=True),
    Column("query_usage_30_day", Integer, nullable=True),
    UniqueConstraint("team_id", "name"),
)

property_definitions = Table(
    "property_definitions",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("team_id", Id, nullable=False),
    Column("name", String(400), nullable=False),
    Column("is_numerical", Boolean, nullable=False, server_default="0"),
    Column("volume_30_day", Integer, nullable=True),
    Column("query_usage_30_day", Integer, nullable=True),
    UniqueConstraint("team_id", "name"),
)


# group types per team with their index (0..4), and the groups `$groupidentify` names
group_type_mappings = Table(
    "group_type_mappings",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("team_id", Id, nullable=False),
    Column("group_type", String(400), nullable=False),
    Column("group_type_index", Integer, nullable=False),
    UniqueConstraint("team_id", "group_type", name="uq_group_type_mappings_team_id_type"),
    UniqueConstraint("team_id", "group_type_index", name="uq_group_type_mappings_team_id_index"),
)

groups = Table(
    "groups",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("team_id", Id, nullable=False),
    Column("group_type_index", Integer, nullable=False),
    Column("group_key", String(400), nullable=False),
    Column("group_properties", Json, nullable=False, server_default="{}"),
    _now(),
    UniqueConstraint("team_id", "group_type_index", "group_key"),
)
