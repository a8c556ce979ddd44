-- GET /admin/users pages by (created_at, id): without this every page sorts the whole table.
CREATE INDEX users_created_at_id ON users(created_at, id);
