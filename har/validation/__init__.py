"""Great Expectations suites for recordings and windows, and a short human report."""
