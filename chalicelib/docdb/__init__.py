"""DocumentDB access: client factory, request parsing, the collection service."""
