"""The local service stack: processes that stand in for compose's services on one machine."""
