"""eldercare_edge."""
