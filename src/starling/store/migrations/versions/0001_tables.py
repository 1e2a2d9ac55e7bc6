"""The store's tables as the first SQLite stores had them; on PostgreSQL, partitioned by time.

A SQLite store made before migrations existed already holds these tables (IF NOT EXISTS: it is taken
over as it is). On PostgreSQL the tables that grow with every alert are partitioned by ``mjd`` (the
writer adds a partition for each 30 days it meets; the default partition catches anything else), so
that retention drops whole partitions; positions are indexed with q3c.

Revision ID: 0001
Revises:
Create Date: 2026-12-01
"""

from __future__ import annotations

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_SQLITE = """
CREATE TABLE IF NOT EXISTS objects (
    survey TEXT NOT NULL, object_id TEXT NOT NULL,
    ra REAL NOT NULL, dec REAL NOT NULL,
    first_mjd REAL NOT NULL, last_mjd REAL NOT NULL,
    last_alert_id INTEGER NOT NULL, last_band TEXT, last_mag REAL, last_flux REAL,
    n_detections INTEGER NOT NULL, n_upper_limits INTEGER NOT NULL,
    PRIMARY KEY (survey, object_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS alerts (
    survey TEXT NOT NULL, alert_id INTEGER NOT NULL, object_id TEXT NOT NULL,
    mjd REAL NOT NULL, ra REAL NOT NULL, dec REAL NOT NULL, band TEXT,
    mag REAL, mag_err REAL, flux REAL, flux_err REAL, reliability REAL, schema_version TEXT,
    PRIMARY KEY (survey, alert_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS alerts_by_object ON alerts (survey, object_id, mjd);
CREATE INDEX IF NOT EXISTS alerts_by_time ON alerts (mjd);
CREATE TABLE IF NOT EXISTS detections (
    survey TEXT NOT NULL, detection_id INTEGER NOT NULL, object_id TEXT NOT NULL,
    mjd REAL NOT NULL, band TEXT, ra REAL, dec REAL,
    mag REAL, mag_err REAL, flux REAL, flux_err REAL,
    PRIMARY KEY (survey, detection_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS detections_by_object ON detections (survey, object_id, mjd);
CREATE TABLE IF NOT EXISTS non_detections (
    survey TEXT NOT NULL, object_id TEXT NOT NULL, mjd REAL NOT NULL, band TEXT NOT NULL,
    limiting_mag REAL, limiting_flux REAL,
    PRIMARY KEY (survey, object_id, mjd, band)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS forced_photometry (
    survey TEXT NOT NULL, object_id TEXT NOT NULL, mjd REAL NOT NULL, band TEXT NOT NULL,
    flux REAL, flux_err REAL,
    PRIMARY KEY (survey, object_id, mjd, band)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS annotations (
    survey TEXT NOT NULL, alert_id INTEGER NOT NULL, annotator TEXT NOT NULL, payload TEXT NOT NULL,
    PRIMARY KEY (survey, alert_id, annotator)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS filter_matches (
    filter TEXT NOT NULL, survey TEXT NOT NULL, alert_id INTEGER NOT NULL,
    object_id TEXT NOT NULL, mjd REAL NOT NULL,
    PRIMARY KEY (filter, survey, alert_id)
) WITHOUT ROWID
"""

_POSTGRESQL = """
CREATE EXTENSION IF NOT EXISTS q3c;
CREATE TABLE objects (
    survey text NOT NULL, object_id text NOT NULL,
    ra double precision NOT NULL, dec double precision NOT NULL,
    first_mjd double precision NOT NULL, last_mjd double precision NOT NULL,
    last_alert_id bigint NOT NULL, last_band text, last_mag double precision, last_flux double precision,
    n_detections integer NOT NULL, n_upper_limits integer NOT NULL,
    PRIMARY KEY (survey, object_id)
);
CREATE INDEX objects_by_position ON objects (q3c_ang2ipix(ra, dec));
CREATE TABLE alerts (
    survey text NOT NULL, alert_id bigint NOT NULL, object_id text NOT NULL,
    mjd double precision NOT NULL, ra double precision NOT NULL, dec double precision NOT NULL, band text,
    mag double precision, mag_err double precision, flux double precision, flux_err double precision,
    reliability double precision, schema_version text,
    PRIMARY KEY (survey, alert_id, mjd)
) PARTITION BY RANGE (mjd);
CREATE INDEX alerts_by_object ON alerts (survey, object_id, mjd);
CREATE INDEX alerts_by_time ON alerts (mjd);
CREATE INDEX alerts_by_position ON alerts (q3c_ang2ipix(ra, dec));
CREATE TABLE detections (
    survey text NOT NULL, detection_id bigint NOT NULL, object_id text NOT NULL,
    mjd double precision NOT NULL, band text, ra double precision, dec double precision,
    mag double precision, mag_err double precision, flux double precision, flux_err double precision,
    PRIMARY KEY (survey, detection_id, mjd)
) PARTITION BY RANGE (mjd);
CREATE INDEX detections_by_object ON detections (survey, object_id, mjd);
CREATE INDEX detections_by_position ON detections (q3c_ang2ipix(ra, dec));
CREATE TABLE non_detections (
    survey text NOT NULL, object_id text NOT NULL, mjd double precision NOT NULL, band text NOT NULL,
    limiting_mag double precision, limiting_flux double precision,
    PRIMARY KEY (survey, object_id, mjd, band)
) PARTITION BY RANGE (mjd);
CREATE TABLE forced_photometry (
    survey text NOT NULL, object_id text NOT NULL, mjd double precision NOT NULL, band text NOT NULL,
    flux double precision, flux_err double precision,
    PRIMARY KEY (survey, object_id, mjd, band)
) PARTITION BY RANGE (mjd);
CREATE TABLE annotations (
    survey text NOT NULL, alert_id bigint NOT NULL, annotator text NOT NULL, payload text NOT NULL,
    PRIMARY KEY (survey, alert_id, annotator)
);
CREATE TABLE filter_matches (
    filter text NOT NULL, survey text NOT NULL, alert_id bigint NOT NULL,
    object_id text NOT NULL, mjd double precision NOT NULL,
    PRIMARY KEY (filter, survey, alert_id, mjd)
) PARTITION BY RANGE (mjd);
CREATE TABLE alerts_default PARTITION OF alerts DEFAULT;
CREATE TABLE detections_default PARTITION OF detections DEFAULT;
CREATE TABLE non_detections_default PARTITION OF non_detections DEFAULT;
CREATE TABLE forced_photometry_default PARTITION OF forced_photometry DEFAULT;
CREATE TABLE filter_matches_default PARTITION OF filter_matches DEFAULT
"""

_TABLES = (
    "filter_matches",
    "annotations",
    "forced_photometry",
    "non_detections",
    "detections",
    "alerts",
    "objects",
)


def upgrade() -> None:
    ddl = _POSTGRESQL if op.get_context().dialect.name == "postgresql" else _SQLITE
    for statement in ddl.split(";"):
        if statement.strip():
            op.execute(statement)


def downgrade() -> None:
    for table in _TABLES:
        op.execute(f"DROP TABLE IF EXISTS {table}")
