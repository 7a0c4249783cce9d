"""The store seam: the only package that imports pyoxigraph.Store or speaks to a SPARQL server."""
