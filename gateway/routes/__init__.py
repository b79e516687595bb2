"""The REST operations, one module per group of routes, and the route table (``table``) that names
each operation's handler callable."""
