"""What autogenerate compared and why, and readable diffs."""
