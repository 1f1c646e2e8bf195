"""The language server: handlers, the served workspace folders, request parsing and message hygiene."""
