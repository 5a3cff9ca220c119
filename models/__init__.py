"""elbocheck."""
