"""Storage: the object store (S3 through the minio SDK, or an embedded SeaweedFS server) and the
catalogue (SQLModel on SQLite or PostgreSQL)."""
