"""Apply revisions to a database: the runner, its steps, the lock, the ledger,
interrupts and failure reports."""
