-- What the declared resources looked like when their tables were last migrated, so a changed
-- declaration can be compared field by field (kind, optionality, owner) in any dialect.
CREATE TABLE rampart_resources (
    resource TEXT PRIMARY KEY NOT NULL,
    owner    TEXT
);
CREATE TABLE rampart_resource_fields (
    resource TEXT NOT NULL,
    field    TEXT NOT NULL,
    kind     TEXT NOT NULL,
    optional BOOLEAN NOT NULL,
    PRIMARY KEY (resource, field)
);
