"""eldercare_cloud."""
