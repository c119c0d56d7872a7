"""Database objects the extension accepts (adapters), URLs shown to users,
and tenant schemas."""
