"""eldercare_sim."""
