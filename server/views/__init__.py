"""One blueprint per feature; views never import each other."""
