-- Users and their roles.
CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL);

CREATE TABLE roles (user_id INTEGER REFERENCES users(id), role TEXT);

SELECT users.name, roles.role
FROM users JOIN roles ON roles.user_id = users.id
WHERE roles.role = 'admin';
